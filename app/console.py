"""Printing a command's report to standard output when the reader may leave early."""

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
