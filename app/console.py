"""A command's words to its user: the report on standard output, where the reader may leave
early (``| head``), and one-line complaints on standard error in the form argparse uses."""

from __future__ import annotations

import os
import sys

_reader_gone = False


def say(text: str) -> bool:
    """Print ``text``; if the reader has gone (``| head``), drop this and all later output
    instead of failing: the command still finishes its work, such as writing --json.

    Returns whether the reader is still there to get it. Any other failure to write (a
    full disk behind ``> file``) raises OSError; nothing more is printed after it.
    """
    global _reader_gone
    if _reader_gone:
        return False
    try:
        print(text, flush=True)
    except OSError as exc:
        _reader_gone = True
        # Python would also fail flushing at exit; point stdout at nothing instead.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        if not isinstance(exc, BrokenPipeError):  # a full disk, say: the caller's to tell
            raise
        return False
    return True


def note(text: str) -> None:
    """Write ``text`` on standard error. One that is closed or full is passed over: what
    goes there is for a person watching, and the exit status still tells a script."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # ValueError: the stream was closed
        pass


def tell(prog: str, text: str) -> None:
    """Say ``prog: text`` on standard error, as argparse words its own errors, so that every
    command's complaints read alike to users and scripts."""
    note(f"{prog}: {text}")


def error(prog: str, text: str) -> None:
    """Say ``prog: error: text`` on standard error (see :func:`tell`)."""
    tell(prog, f"error: {text}")
