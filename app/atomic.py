"""Write files so that the final name only ever holds a complete file.

Everything MaskWatch produces for a user (videos, events, reports, weights) goes through
here: data is written under a temporary name in the same folder, flushed to disk and
renamed at the end.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import logging
import os
import re
import time
from pathlib import Path
from typing import Iterator

from models.file_kind import ONNX, TORCHSCRIPT, WEIGHTS, model_kind

log = logging.getLogger(__name__)


class OutputExistsError(FileExistsError):
    """Raised when an output would overwrite an existing file without permission."""


class OutputNameError(OSError):
    """An output name that cannot mean a file to write, such as ``-``."""


STDOUT = "-"  # the name many tools read as standard output


def check_writable(
    path: Path, overwrite: bool, make_folder: bool = False, may_replace: tuple[str, ...] = ()
) -> None:
    """Refuse an existing output unless ``overwrite`` is set; make sure its folder exists.

    A file that holds a model is refused even with ``overwrite``, unless the output is a
    model of that kind itself (``may_replace``, kinds from ``models.file_kind``: tuned
    weights, an export): a report, a recording or figures written over a checkpoint would
    cost the user their training, whatever the file is called. With ``make_folder`` a
    missing folder is fine as long as it can be made; it is not made here, so a command
    refused later leaves nothing behind.
    """
    path = Path(path)
    if str(path) == STDOUT:  # many tools read it as standard output; here it would be a file
        raise OutputNameError(
            "- as an output: standard output is not offered (outputs are written whole or not "
            "at all); name a file"
        )
    if path.is_dir():
        raise OutputExistsError(f"{path} is a folder; name a file")
    if path.exists() and not path.is_file():
        raise OutputExistsError(
            f"{path} is not a regular file (a pipe, a device or a socket); name a file to write"
        )
    if path.is_symlink():  # a rename would replace the link, not the file it points to
        raise OutputExistsError(
            f"{path} is a symbolic link to {os.readlink(path)}; name the file itself"
        )
    kind = model_kind(path)
    if kind and kind not in may_replace:
        what = "this output" if may_replace else "a report or recording"
        raise OutputExistsError(
            f"{path} holds {kind}, which {what} never replaces; write it elsewhere"
        )
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists (pass --overwrite to replace it)")
    folder = path.parent
    if make_folder:
        check_folder(folder)
        return
    if not folder.exists():
        raise FileNotFoundError(f"folder {folder} does not exist")
    if not folder.is_dir():
        raise NotADirectoryError(
            f"{folder} is a file, not a folder, so {path.name} cannot go in it"
        )
    if why := _not_writable(folder):
        raise PermissionError(f"cannot write {path}: folder {folder} is not writable ({why})")


def check_folder(folder: Path) -> None:
    """Make sure files can be written in ``folder``, or that it can be made; make nothing."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():
            raise NotADirectoryError(f"{existing} is a broken link, so {folder} cannot be made")
        existing = existing.parent
    if not existing.is_dir():
        if existing == folder:
            raise NotADirectoryError(f"{folder} is a file, not a folder")
        raise NotADirectoryError(f"{existing} is a file, not a folder, so {folder} cannot be made")
    if why := _not_writable(existing):
        verb = "written in" if existing == folder else "made"
        raise PermissionError(
            f"folder {folder} cannot be {verb}: {existing} is not writable ({why})"
        )


def make_folders(folder: Path) -> list[Path]:
    """Make ``folder`` and any missing parents; returns those it made, outermost first."""
    folder = Path(folder)
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    missing.reverse()
    made = []
    for path in missing:
        try:
            path.mkdir()
        except FileExistsError:
            if not path.is_dir():
                raise
            continue  # made meanwhile by someone else: not ours to remove later
        made.append(path)
    return made


def _not_writable(folder: Path) -> str | None:
    """Why no file can be made in the existing ``folder``, in words, or None when one can:
    os.access first, then a real probe (read-only mounts pass os.access)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return "permission denied"
    return why_unwritable(folder)


# Why a new file could not be made in a folder that exists, by the errno the OS gave. A
# virtual file system (/proc) answers "no such file" for a file in a folder that is there.
_UNWRITABLE = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOENT: "its file system takes no new files",
    errno.ENOSPC: "no space left on the disk",
}


def why_unwritable(folder: Path) -> str | None:
    """Why no file can be made in the existing folder ``folder``, in words; None when one can.

    A probe file is made and removed: os.access passes read-only mounts and, for root, every
    folder; a virtual file system (/proc, /sys) reports 0 bytes free and takes no file, so
    free space alone would blame a full disk.
    """
    probe = Path(folder) / f".maskwatch-write-test-{os.getpid()}"
    try:
        probe.touch()
    except OSError as exc:
        return _UNWRITABLE.get(exc.errno, (exc.strerror or str(exc)).lower())
    probe.unlink(missing_ok=True)
    return None


MAX_NAME_BYTES = 255  # the longest file name Linux and macOS file systems take
_TEMP = re.compile(r"^\.(?P<stem>.*)\.partial-(?P<pid>\d+)(?P<suffix>\.[^.]*)?$")


# A writer killed outright (SIGKILL, a crash, a power cut) leaves its temporary file behind;
# one whose process is gone and that has not changed for this long is nobody's work in
# progress (a recording's file changes several times a second).
STALE_AFTER_S = 60.0


# A partial file that holds a model is removed only when its suffix says it was meant to:
# a killed export's ``.student.partial-PID.onnx``, not a model someone named like a recording.
MODEL_SUFFIXES = {".pt": (WEIGHTS, TORCHSCRIPT), ".pth": (WEIGHTS, TORCHSCRIPT), ".onnx": (ONNX,)}


def _killed(path: Path, pid: int, mine_too: bool = False) -> bool:
    """Whether the partial file ``path`` of process ``pid`` is a killed writer's: the process
    is gone (or, with ``mine_too``, is this one: a container's runs all have one PID, and a
    caller about to write that very name is not writing it yet), the file has been quiet for
    STALE_AFTER_S, and any model in it is of a kind its suffix names (a model under any other
    name is the user's work, whatever its name says)."""
    if not path.is_file() or path.is_symlink():
        return False
    if _process_runs(pid) and not (mine_too and pid == os.getpid()):
        return False
    try:
        if time.time() - path.stat().st_mtime <= STALE_AFTER_S:
            return False
    except OSError:
        return False
    kind = model_kind(path)
    return kind is None or kind in MODEL_SUFFIXES.get(path.suffix.lower(), ())


def left_by_killed_writers(folder: Path, *final_globs: str) -> list[Path]:
    """The temporary files (``temp_name``) in ``folder`` of final names matching any of
    ``final_globs`` that were left by killed writers (``_killed``). Such a file is unfinished:
    a video without its closing index, say."""
    found = []
    for path in Path(folder).glob(".*.partial-*"):
        match = _TEMP.match(path.name)
        if not match or not any(final_name(path).match(pattern) for pattern in final_globs):
            continue
        if _killed(path, int(match["pid"])):
            found.append(path)
    return sorted(found)


def remove_left_by_killed(paths: list[Path], what: str | None = None) -> None:
    """Delete ``paths``, saying so for each (``what``: "recording", say; by default the final
    name each file was meant for); a file that will not go is named, not fatal."""
    for path in paths:
        try:
            size = path.stat().st_size
            path.unlink()
        except OSError as exc:
            log.warning("could not remove %s: %s", path, describe_error(exc))
            continue
        log.warning(
            "removed %s (%.1f MB), the unfinished %s of a run that was killed before it "
            "could finish it",
            path,
            size / 1e6,
            what or final_name(path).name,
        )


def remove_killed_partial(final: Path) -> None:
    """Remove the killed writers' temporary files of the one output ``final``, also those
    whose name ``temp_name`` shortened; called before this process writes ``final``."""
    final = Path(final)
    for path in final.parent.glob(f".*.partial-*{glob.escape(final.suffix)}"):
        match = _TEMP.match(path.name)
        if not match or path != temp_name(final, int(match["pid"])):
            continue
        if _killed(path, int(match["pid"]), mine_too=True):
            remove_left_by_killed([path])


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process, or no such number
        return True
    return True


def temp_name(path: Path, pid: int | None = None) -> Path:
    """The in-progress name for ``path`` (of process ``pid``, by default this one): same
    folder, same suffix, so writers keep formats.

    A stem too long to carry the marker is shortened, so any name the user may write can
    also be written through its temporary name.
    """
    path = Path(path)
    marker = f".partial-{os.getpid() if pid is None else pid}{path.suffix}"
    stem = path.stem
    room = MAX_NAME_BYTES - len(marker.encode()) - 1
    while len(stem.encode()) > room:
        stem = stem[:-1]
    return path.with_name(f".{stem}{marker}")


@contextlib.contextmanager
def atomic_path(path: Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to ``path`` only if the block succeeds.

    With ``overwrite`` False an existing ``path`` is never replaced (see ``place``).
    """
    path = Path(path)
    tmp = temp_name(path)
    remove_killed_partial(path)
    try:
        yield tmp
        place(tmp, path, overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def place(tmp: Path, path: Path, overwrite: bool) -> None:
    """Give the finished file ``tmp`` its final name ``path``, durably.

    Without ``overwrite`` the rename refuses to replace a file, even one that another run
    put there after this run checked: two runs writing one output never clobber each other.
    The file's data reaches the disk before it takes its name, and the name after (see
    ``sync_file``, ``sync_folder``): after a power cut the name holds the whole file or
    what it held before.
    """
    tmp, path = Path(tmp), Path(path)
    sync_file(tmp)
    if overwrite:
        os.replace(tmp, path)
    else:
        _link_new(tmp, path)
    sync_folder(path.parent)


def _link_new(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the name ``path`` unless a file has it already; ``tmp`` goes."""
    try:
        os.link(tmp, path)  # fails if ``path`` exists, atomically
    except FileExistsError:
        raise OutputExistsError(
            f"{path} was created by someone else while this run wrote it; that file is kept "
            "(pass --overwrite to replace it)"
        ) from None
    except OSError as exc:
        if exc.errno not in NO_HARD_LINKS:
            raise
        if path.exists():  # FAT and some network file systems: check, then rename
            raise OutputExistsError(f"{path} already exists (pass --overwrite to replace it)")
        os.replace(tmp, path)
        return
    tmp.unlink()


# How a file system says that it keeps nothing to flush, or cannot flush a folder (some
# network and FUSE file systems): the file is as safe there as that file system makes it.
CANNOT_SYNC = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF}


# NOTE: a flush costs a disk round trip, a second or more for a large video on a slow disk;
# it is paid once per finished file, never per frame or line of a file still being written.
def sync_file(path: Path) -> None:
    """Make the data of the finished file ``path`` reach the disk (fsync) before it takes
    its final name: without this, a power cut soon after may leave the final name holding
    an empty or cut-off file (ext4 and others write data later than names).

    Works on a file any writer (OpenCV, PyTorch, Pillow) has closed: it is opened again.

    Raises:
        OSError: naming ``path``, when the disk reports that the data could not be written.
    """
    flags = os.O_RDWR if os.name == "nt" else os.O_RDONLY  # Windows flushes writable files
    fd = os.open(path, flags)
    try:
        flush(fd, path)
    finally:
        os.close(fd)


def flush(fd: int, path: Path) -> None:
    """fsync the file ``path`` open as ``fd``; where the file system keeps nothing to flush
    (CANNOT_SYNC) it passes, as the data is as safe there as that file system makes it.

    Raises:
        OSError: naming ``path``, when the disk reports that the data could not be written.
    """
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in CANNOT_SYNC:
            raise OSError(exc.errno, exc.strerror, str(path)) from None


def sync_folder(folder: Path) -> None:
    """Make the names in ``folder`` reach the disk (fsync on the folder), so that a file
    just placed there keeps its name through a power cut. A file system or platform that
    cannot do this is passed over quietly (Windows opens no folder as a file, and NTFS logs
    its names itself); any other failure is logged, as the file is in place by now."""
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        _unsynced(folder, exc)
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        _unsynced(folder, exc)
    finally:
        os.close(fd)


def _unsynced(folder: Path, exc: OSError) -> None:
    if exc.errno in CANNOT_SYNC:
        return
    log.warning(
        "could not flush folder %s to disk (%s): a power cut soon may lose the names of files "
        "just written there",
        folder,
        exc.strerror or exc,
    )


NO_HARD_LINKS = {errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


def write_text(path: Path, text: str, overwrite: bool = True) -> None:
    """Write a whole text file atomically."""
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")


def final_name(path: str | Path) -> Path:
    """The output a temporary name from ``temp_name`` stands for (other paths unchanged)."""
    path = Path(path)
    match = _TEMP.match(path.name)
    if not match:
        return path
    return path.with_name(match["stem"] + (match["suffix"] or ""))


def describe_error(exc: BaseException) -> str:
    """One line for a user: an OSError names the output as the user gave it, not its
    temporary name, and says what went wrong in words instead of an errno."""
    if not isinstance(exc, OSError) or exc.strerror is None:
        return str(exc)
    if not exc.filename:
        return exc.strerror
    reasons = {
        errno.ENOSPC: "no space left on the disk for {}",
        errno.EROFS: "cannot write {}: the file system is read-only",
        errno.EACCES: "permission denied for {}",
        errno.EEXIST: "{} is a file, not a folder",
        errno.ENOTDIR: "{}: a part of the path is a file, not a folder",
        errno.ENOENT: "no such file or folder: {}",
    }
    template = reasons.get(exc.errno, exc.strerror + ": {}")
    return template.format(final_name(exc.filename))
