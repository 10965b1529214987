// What the dashboard does when the hub rejects this browser's access token (docs/privacy.md, "Access").
//
// With SENSORHUB_API_TOKEN set, the login page stores the token in an HttpOnly cookie that page
// scripts cannot read. When that cookie is missing, wrong or expired (12 h, or the operator changed
// the token), every REST call answers 401 and the live WebSocket handshake is refused. The page
// then goes to /login with a reason the login page explains, instead of silently showing nothing.
// Without a token configured (loopback only) nothing here ever triggers.

/** Reason code understood by the login page (sensorhub/service/security.py, LOGIN_REASONS). */
export const TOKEN_REJECTED = "token_rejected";

/** A REST call the hub answered with 401; the page is already on its way to /login. */
export class TokenRejectedError extends Error {
  constructor(path) {
    super(`${path}: access token rejected, opening the login page`);
    this.name = "TokenRejectedError";
  }
}

let leaving = false;

/** Go to the login page once (later calls are ignored), telling it why. */
export function goToLogin(reason = TOKEN_REJECTED, location = window.location) {
  if (leaving) return;
  leaving = true;
  location.assign(`/login?reason=${encodeURIComponent(reason)}`);
}

/** `fetch` for the hub's API: a 401 sends the page to /login and throws TokenRejectedError. */
export async function apiFetch(path, init) {
  const response = await fetch(path, init);
  if (response.status === 401) {
    goToLogin();
    throw new TokenRejectedError(path);
  }
  return response;
}

/**
 * After the live WebSocket could not connect: is the token the reason? A browser does not see why
 * a handshake was refused (the socket just closes), so ask a protected REST path, which answers 401
 * in exactly that case. Network errors count as "not the token" (the socket keeps reconnecting).
 */
export async function tokenRejected(probePath = "/api/calibration/steps") {
  try {
    const response = await fetch(probePath, { headers: { Accept: "application/json" }, cache: "no-store" });
    return response.status === 401;
  } catch {
    return false;
  }
}
