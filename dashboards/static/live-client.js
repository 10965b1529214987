// The dashboard's connection to the hub's live WebSocket (`/ws/live`, docs/live-api.md).
//
// Receives JSON messages and hands them on; reconnects with a capped backoff whenever the socket
// closes (service restart, network blip, or code 1008 when this page fell behind and the server
// dropped it). The server sends a fresh `hello` on every connect, so no state is replayed here.
// When a connection attempt fails before opening (or closes with the hub's "API token required"),
// the optional `tokenRejected` handler is asked whether the access token is the reason; if so the
// client stops and reports the state "unauthorized" instead of retrying forever.

const BACKOFF_S = [0.5, 1, 2, 4, 5];

export class LiveClient {
  /**
   * @param {string} url ws:// or wss:// URL of /ws/live
   * @param {{onMessage: (msg: object) => void, onState: (state: string, detail?: string) => void,
   *          tokenRejected?: () => Promise<boolean>}} handlers
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
  }

  /** Default URL: the same host and port that served the page. */
  static defaultUrl(location = window.location) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/ws/live`;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket?.close(1000, "page closed");
  }

  connect() {
    this.handlers.onState("connecting");
    const socket = new WebSocket(this.url);
    this.socket = socket;
    let opened = false;
    socket.addEventListener("open", () => {
      opened = true;
      this.attempt = 0;
      this.handlers.onState("open");
    });
    socket.addEventListener("message", (ev) => {
      let message;
      try {
        message = JSON.parse(ev.data);
      } catch (err) {
        console.warn("live: message is not JSON, ignored", err);
        return;
      }
      this.handlers.onMessage(message);
    });
    socket.addEventListener("close", async (ev) => {
      if (this.socket !== socket) return;
      const detail = ev.code === 1008 ? `dropped by the hub (${ev.reason || "too slow"})` : `code ${ev.code}`;
      this.handlers.onState("closed", detail);
      if (this.stopped) return;
      const refused = !opened || (ev.code === 1008 && /token/i.test(ev.reason));
      if (refused && this.handlers.tokenRejected && (await this.handlers.tokenRejected())) {
        if (this.socket !== socket) return;
        this.stopped = true;
        this.handlers.onState("unauthorized", "the hub rejected this browser's access token");
        return;
      }
      if (!this.stopped && this.socket === socket) this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    const delay = BACKOFF_S[Math.min(this.attempt, BACKOFF_S.length - 1)];
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay * 1000);
  }
}
