"""Forked child processes that let a batch command use the machine's second core.

``sensorhub analyze`` is a chain of stages, but two pieces of it do not depend on each other: each
sensor's ingest (decoding and stream assembly), and the report figure against writing angles.csv and
reps.json. :class:`ForkedWorker` runs calls in a child process made with ``fork``, so the child starts
with everything the parent has imported and holds (no interpreter start, no pickling of inputs given
at creation) and only the results travel back through a pipe.

The rules that keep this safe for a command-line tool:

* **Fork only from a single-threaded process** (:func:`can_fork`): a thread holding a lock at the
  moment of the fork would leave that lock held forever in the child. Callers fall back to running
  the work in their own process when this says no (a server, a test runner with threads).
* **Errors come back as they were raised**: the child's exception is re-raised in the parent with
  its type and message (and the child's traceback as a note), so a command reports it exactly as it
  would have without the child. An exception that cannot be pickled comes back as a
  :class:`~sensorhub.errors.SensorhubError` (or :class:`WorkerError` if it was not one) with the
  same message.
* **No orphans**: children are daemonic (terminated and joined when the parent exits normally or
  by an exception), a child waiting for work exits on end-of-file when the parent closes its end or
  dies, and a child whose parent died while it worked fails to send its result and exits.

This module knows nothing of sensors or reports; it moves calls and results between processes.
"""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Self

from sensorhub.errors import SensorhubError

log = logging.getLogger(__name__)

__all__ = ["ForkedWorker", "WorkerError", "can_fork"]

JOIN_TIMEOUT_S = 30.0
"""How long :meth:`ForkedWorker.close` waits for a child to finish the work already sent and exit
before terminating it (a report takes well under a second; this bounds a hung child)."""

Call = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]

_PARENT_ENDS: set[Connection] = set()
"""This process's ends of its workers' pipes. A child forked later inherits copies of them and must
close those, or an earlier worker would never see its end-of-file while the later one lives."""


class WorkerError(RuntimeError):
    """A child process died or raised an exception that could not be sent back as it was."""


def can_fork() -> bool:
    """Whether this process may fork a worker: the platform has ``fork`` and only one thread runs."""
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


class ForkedWorker:
    """A forked child that runs calls one after another and sends back each result, in order.

    ``first`` is a call the child starts on at once; its arguments reach the child through the fork
    (nothing is pickled), so it suits large inputs the parent already holds. Further calls go through
    :meth:`submit` (arguments pickled). :meth:`result` returns the next result or re-raises the
    child's exception. Use as a context manager, or call :meth:`close`, so the child is always reaped.
    """

    def __init__(self, name: str, first: Call | None = None) -> None:
        self.name = name
        ctx = multiprocessing.get_context("fork")
        self._conn, child_conn = ctx.Pipe(duplex=True)
        self._pending = 0 if first is None else 1
        self._first_pending = first is not None
        self._process = ctx.Process(target=_serve, args=(child_conn, first), name=name, daemon=True)
        _PARENT_ENDS.add(self._conn)
        self._process.start()
        child_conn.close()  # the child's end lives in the child only: its exit is our end-of-file

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue ``fn(*args, **kwargs)`` in the child (``fn`` and the arguments are pickled)."""
        try:
            self._conn.send((fn, args, kwargs))
        except (BrokenPipeError, ConnectionResetError, OSError) as exc:
            raise self._died(f"could not send work ({exc})") from exc
        self._pending += 1

    def result(self) -> Any:
        """The next call's return value; re-raises the exception it raised in the child."""
        if self._pending == 0:
            raise WorkerError(f"{self.name}: no call pending")
        self._pending -= 1
        self._first_pending = False
        try:
            ok, value = self._conn.recv()
        except (EOFError, ConnectionResetError, OSError) as exc:
            raise self._died("exited before returning a result") from exc
        if ok:
            return value
        raise value

    def close(self, *, abandon: bool = False) -> None:
        """Tell the child there is no more work and wait for it to finish what was sent and exit
        (terminating it after :data:`JOIN_TIMEOUT_S`).

        ``abandon``: the caller is failing and wants no more results; a child with no :meth:`submit`
        call pending (only its first call, say a warm-up or work whose result is now useless) is
        terminated at once instead of being waited for. Submitted work is always waited for: it may be
        writing a file the caller has reported as written.
        """
        _PARENT_ENDS.discard(self._conn)
        self._conn.close()
        if abandon and self._pending == int(self._first_pending):
            self._process.terminate()
        self._process.join(JOIN_TIMEOUT_S)
        if self._process.is_alive():
            log.warning("%s: worker process %d did not exit; terminating it", self.name, self._process.pid)
            self._process.terminate()
            self._process.join(JOIN_TIMEOUT_S)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        self.close(abandon=exc_type is not None)

    def _died(self, what: str) -> WorkerError:
        self._process.join(JOIN_TIMEOUT_S)
        return WorkerError(f"{self.name}: worker process {what} (exit code {self._process.exitcode})")


def _serve(conn: Connection, first: Call | None) -> None:
    """Child main loop: run ``first``, then every call received, until the parent closes the pipe."""
    # The parent's ends of this and every other worker's pipe: open here, they would hide the
    # parent's closing them (or dying) from this worker and the others.
    for parent_end in _PARENT_ENDS:
        parent_end.close()
    _PARENT_ENDS.clear()
    call = first
    try:
        while True:
            if call is None:
                try:
                    call = conn.recv()
                except EOFError:
                    return
            fn, args, kwargs = call
            call = None
            try:
                reply: tuple[bool, Any] = (True, fn(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - every failure goes back to the parent
                reply = (False, _portable(exc))
            conn.send(reply)
    except KeyboardInterrupt:
        return  # Ctrl-C reached the whole process group; the parent reports it
    except (BrokenPipeError, ConnectionResetError):
        return  # the parent is gone: nobody is left to report to


def _portable(exc: Exception) -> Exception:
    """``exc`` with the child's traceback as a note, or a same-message stand-in if it cannot be pickled."""
    exc.add_note("(raised in a worker process)\n" + "".join(traceback.format_exception(exc)).rstrip())
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any pickling failure means: send a stand-in
        message = str(exc)
        stand_in: Exception = SensorhubError(message) if isinstance(exc, SensorhubError) else WorkerError(
            f"{type(exc).__name__}: {message}"
        )
        for note in getattr(exc, "__notes__", ()):
            stand_in.add_note(note)
        return stand_in
