"""interrupts_deferred is not stop_signals_held: a stop signal during the bookkeeping it guards becomes `Interrupted`
after the block whatever handler was there before, and an error of the block itself is never covered by it."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from seg.engine.stopping import STOP_SIGNALS, Interrupted, interrupts_deferred


@pytest.fixture
def outside_handlers() -> Iterator[None]:
    """The stop signals' handlers as they were, put back after the test."""
    saved = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("signum", STOP_SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_stop_during_the_block_is_raised_after_it_even_where_no_handler_would(signum: int, outside_handlers) -> None:
    """With no seg handler installed (here SIG_IGN, which would drop the signal), the block still runs to its end
    and the stop is raised as `Interrupted` after it; the handler that was there is back."""
    signal.signal(signum, signal.SIG_IGN)
    finished = []
    with pytest.raises(Interrupted, match=signal.Signals(signum).name), interrupts_deferred():
        signal.raise_signal(signum)
        finished.append(True)
    assert finished and signal.getsignal(signum) is signal.SIG_IGN


def test_an_error_of_the_block_is_raised_as_it_is_not_as_the_stop_that_came_meanwhile(outside_handlers) -> None:
    """A hook that fails while a stop is held reports its own error, also where the handler outside raises (as
    seg.train's does). Caught as BaseException: a wrong `Interrupted`, a KeyboardInterrupt, fails this test instead
    of ending the session."""

    def raising(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    signal.signal(signal.SIGTERM, raising)
    with pytest.raises(BaseException) as raised, interrupts_deferred():
        signal.raise_signal(signal.SIGTERM)
        raise OSError("disk full")
    assert type(raised.value) is OSError, repr(raised.value)
