"""Printing a command's report to standard output when the reader may leave early."""

from __future__ import annotations

import os
import sys


def say(text: str) -> None:
    """Print ``text``; if the reader has gone (``| head``), drop this and all later output
    instead of failing: the command still finishes its work, such as writing --json."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # Python would also fail flushing at exit; point stdout at nothing instead.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
