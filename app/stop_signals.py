"""SIGINT, SIGTERM and SIGHUP as one exception, so a long command cleans up the same way for
each and can say which one stopped it."""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
from typing import Callable

# Signals that stop a command the way Ctrl-C does, with the word said for each.
STOP_SIGNALS = {
    getattr(signal, name): word
    for name, word in (("SIGINT", "interrupted"), ("SIGTERM", "terminated"), ("SIGHUP", "hung up"))
    if hasattr(signal, name)
}


class Stopped(KeyboardInterrupt):
    """A stop signal, raised as a KeyboardInterrupt so that the clean-up of Ctrl-C runs."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum: int, _frame) -> None:
    for sig in STOP_SIGNALS:  # a second signal must not cut the clean-up short
        signal.signal(sig, signal.SIG_IGN)
    raise Stopped(signum)


def _handled_here(sig: int) -> bool:
    """Whether this command takes ``sig`` over: all three, except a hang-up that was ignored
    when it started, which ``nohup`` asks for so that a run outlives the terminal."""
    hangup = getattr(signal, "SIGHUP", None)
    return not (sig == hangup and signal.getsignal(sig) == signal.SIG_IGN)


@contextlib.contextmanager
def _stop_signals_handled(handler):
    """Within the block SIGINT, SIGTERM and SIGHUP go to ``handler``, even where the shell
    started the command with Ctrl-C ignored (a background job), but not a SIGHUP ignored
    under ``nohup``; the handlers before it are restored after it (the tests call ``main``
    inside pytest). Only the main thread may set handlers: elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS if _handled_here(sig)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)


def stop_signals_raise():
    """Within the block SIGINT, SIGTERM and SIGHUP raise ``Stopped``."""
    return _stop_signals_handled(_raise_stopped)


def stop_signals_call(on_stop: Callable[[int], None]):
    """Within the block SIGINT, SIGTERM and SIGHUP call ``on_stop`` with the signal's number.

    For a command that runs Qt's event loop: an exception raised in a signal handler cannot
    pass through the loop, so ``on_stop`` asks the loop to end instead, and the command
    cleans up once it has.
    """
    return _stop_signals_handled(lambda signum, _frame: on_stop(signum))


def stoppable(main):
    """Decorate a command's ``main`` so that the whole run is inside ``stop_signals_raise``."""

    @functools.wraps(main)
    def run(*args, **kwargs):
        with stop_signals_raise():
            return main(*args, **kwargs)

    return run


def stop_message(exc: KeyboardInterrupt) -> tuple[str, int]:
    """``stop_words`` for the signal that raised ``exc`` (a plain KeyboardInterrupt: SIGINT)."""
    return stop_words(getattr(exc, "signum", signal.SIGINT))


def stop_words(signum: int) -> tuple[str, int]:
    """What stopped the command, in words (e.g. "terminated (SIGTERM)"), and its exit status
    (128 + the signal's number, as a shell reports a command killed by it)."""
    word = STOP_SIGNALS.get(signum, "stopped")
    name = "" if signum == signal.SIGINT else f" ({signal.Signals(signum).name})"
    return f"{word}{name}", 128 + signum
