"""How a run stops: SIGINT (Ctrl-C) and SIGTERM (SLURM, `timeout`, `docker stop`, Kubernetes) raise `Interrupted`
in the main thread, whenever they come: while loader workers start (held, then raised), inside code where Python
would drop the exception (raised again between batches), never in the middle of an epoch's bookkeeping."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or a scheduler's stop (SIGTERM: SLURM, `timeout`, `docker stop`, Kubernetes)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signal_name = signal.Signals(signum).name


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received: list[int] = []  # stop signals `_raise_interrupted` took since `stop_signals_interrupt`


def _raise_interrupted(signum: int, frame: object) -> None:
    _received.append(signum)
    raise Interrupted(signum)


def stop_signals_interrupt() -> None:
    """Make SIGINT and SIGTERM raise `Interrupted` in the main thread (a no-op elsewhere)."""
    if threading.current_thread() is threading.main_thread():
        _received.clear()
        for signum in STOP_SIGNALS:
            signal.signal(signum, _raise_interrupted)


def raise_if_stopped() -> None:
    """Raise `Interrupted` again for a stop signal whose exception was lost: Python drops an exception raised in a
    fork handler, a finalizer (`__del__`) or a weakref callback ("Exception ignored in ..."), and the signal
    with it; the loaders call this between batches, so such a signal still stops the run within a batch."""
    if _received:
        raise Interrupted(_received.pop())


_held: list[int] = []  # stop signals that came during `stop_signals_held`
_outside: dict[int, Any] = {}  # the handlers `stop_signals_held` replaced, restored when it ends


@contextlib.contextmanager
def stop_signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the block (the handlers only note them), then deliver one that came to the
    handler that was there (`Interrupted` under `stop_signals_interrupt`). Loader workers start inside it: a
    signal during a fork would be raised inside logging's fork handler, which drops it (the run went on); and a
    worker forked meanwhile ends the hold in its own copy when it starts (`release_held_signals`)."""
    if threading.current_thread() is not threading.main_thread() or _outside:
        yield  # signals reach Python in the main thread only; a nested hold leaves it to the outer one
        return
    _held.clear()
    _outside.update({s: signal.signal(s, lambda signum, frame: _held.append(signum)) for s in STOP_SIGNALS})
    try:
        yield
    finally:
        release_held_signals()


def release_held_signals() -> None:
    """End the hold: restore the handlers, then raise a signal that came meanwhile again, for them to act on."""
    handlers = dict(_outside)
    _outside.clear()
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    if _held:
        signal.raise_signal(_held.pop(0))


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then raise `Interrupted`.

    For bookkeeping that must not be cut in half, such as "epoch k is done" and "last.pt holds epoch k".
    Outside the main thread (where signals cannot be handled) it does nothing. Not a `stop_signals_held`: that
    hands a held signal to the handler that was there (with none of seg's, SIGTERM's default ends the process and
    SIG_IGN drops it) even when the block failed; this raises `Interrupted` itself, and only after a block that
    finished, so a failing hook reports its own error.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        raise Interrupted(received[0])
