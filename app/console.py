"""A command's words to its user: the report on standard output, where the reader may leave
early (``| head``), and one-line complaints on standard error in the form argparse uses."""

from __future__ import annotations

import contextlib
import logging
import os
import sys

from tqdm import tqdm

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"

_reader_gone = False
_report_failure: OSError | None = None  # why a report line could not be written, if it failed


def counted(count: int, noun: str) -> str:
    """``count`` and ``noun``, the noun plural unless the count is one: "1 frame", "3 faces"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def send(text: str) -> bool:
    """Print ``text`` on standard output; if the reader has gone (``| head``), drop this and
    all later output instead of failing.

    Returns whether the reader is still there to get it. Any other failure to write (a
    full disk behind ``> file``) raises OSError, for a caller whose output this is (the
    streamed events); nothing more is printed after it.
    """
    global _reader_gone
    if _reader_gone:
        return False
    try:
        print(text, flush=True)
    except (OSError, ValueError) as exc:  # ValueError: sys.stdout was closed
        _reader_gone = True
        # Python would also fail flushing at exit; point stdout at nothing instead.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
            raise
        return False
    return True


def say(text: str) -> bool:
    """Print a line of a command's report. It never fails the command: a reader that has gone
    (``| head``) drops the rest, and any other failure (a full disk) is kept for
    :func:`exit_status`, so the command still finishes its work, such as writing --json.

    Returns whether the line reached standard output.
    """
    global _report_failure
    try:
        return send(text)
    except OSError as exc:
        _report_failure = exc
        return False


def exit_status(status: int, prog: str) -> int:
    """The status a command exits with: ``status``, or 1 when it would be 0 but some of its
    report could not be written to standard output (said on standard error)."""
    if _report_failure is None:
        return status
    reason = _report_failure.strerror or str(_report_failure)
    error(prog, f"the report could not be written to standard output ({reason})")
    return status or 1


def note(text: str) -> None:
    """Write ``text`` on standard error. One that is closed or full is passed over: what
    goes there is for a person watching, and the exit status still tells a script."""
    if sys.stderr is None:  # print would fall back on standard output
        return
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


class _Forgiving:
    """Standard error for messages and progress bars that falls silent at the first write
    that fails (a full disk behind ``2> file``), rather than failing the command's work."""

    def __init__(self, stream):
        self._stream = stream
        self._failed = False

    def write(self, text: str) -> int:
        if not self._failed:
            try:
                return self._stream.write(text)
            except (OSError, ValueError):
                self._failed = True
        return len(text)

    def flush(self) -> None:
        if not self._failed:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._failed = True

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def guard_streams() -> set[str]:
    """Make standard output and error safe to write to, first thing in a command.

    A stream the command was started without (``>&-``, ``2>&-``) is pointed at nothing, its
    file descriptor too: else the first file the command opens would take that number and
    receive what OpenCV or FFmpeg print. Standard error then drops what it cannot write, so
    progress bars and warnings never stop the work. Returns the names of the closed streams.
    """
    closed = set()
    for fd, name in ((1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            closed.add(name)
            devnull = os.open(os.devnull, os.O_WRONLY)
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)
    if sys.stdout is None or "stdout" in closed:
        sys.stdout = open(os.devnull, "w")  # open for the life of the process
    if sys.stderr is None or "stderr" in closed:
        sys.stderr = open(os.devnull, "w")
    if not isinstance(sys.stderr, _Forgiving):
        sys.stderr = _Forgiving(sys.stderr)
    return closed


class _AboveProgressBars(logging.Handler):
    """Log records on standard error, each on a line of its own: a progress bar on the screen
    is lifted and drawn again below it, instead of the record running on from its end."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # as logging's own handlers do: never fail the command over a log line
            self.handleError(record)


def log_to_stderr(level: int) -> None:
    """Send the command's log records from ``level`` up to standard error, in the form every
    command shares ("WARNING app.headless: ..."); a no-op when logging is set up already."""
    handler = _AboveProgressBars()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
