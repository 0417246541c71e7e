"""What the training and measuring commands write: checked against their inputs, strict JSON,
and files that belong together (weights and their report) placed as one set.

``app.atomic`` writes one file safely; here a run's several files either all take their final
names or none does, so a failure while saving never leaves new weights beside an old report.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

import numpy as np

from app.atomic import (
    NO_HARD_LINKS,
    atomic_path,
    check_writable,
    describe_error,
    final_name,
    place,
    remove_killed_partial,
    temp_name,
    write_text,
)
from app.console import error


class OutputIsInputError(ValueError):
    """An output path that names one of the run's own input files."""


class OutputsNotWrittenError(RuntimeError):
    """Writing a run's outputs failed after the work was done; the earlier files are kept."""


class WorkNotSavedError(RuntimeError):
    """A file a run keeps for itself (prepared crops, per-epoch state) could not be written
    mid-run, a full disk say; what was there before is kept."""


def same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file (also through links or ``..``)."""
    a, b = Path(a), Path(b)
    with contextlib.suppress(OSError):
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def is_within(path: Path, folder: Path) -> bool:
    """True when ``path`` is ``folder`` or lies below it (links resolved)."""
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents


def refuse_inside(path: Path, flag: str, data: dict[str, Path | None]) -> None:
    """Refuse an output inside a data folder the commands read (``{"--scenes": folder}``):
    the next run would take what is written there for data."""
    for given, folder in data.items():
        if folder is not None and is_within(Path(path), Path(folder)):
            raise ValueError(
                f"{flag} {path} lies inside the {given} folder {folder}; the next run would "
                "take what is written there for data. Pick a place outside it"
            )


def refuse_inputs(
    output: Path | None, flag: str, inputs: dict[str, Path | Iterable[Path] | None]
) -> None:
    """Refuse an ``output`` that is one of ``inputs`` (flag -> file or files), even with
    --overwrite: the run would replace what it reads.

    Raises:
        OutputIsInputError: naming both flags.
    """
    if output is None:
        return
    for source, paths in inputs.items():
        if paths is None:
            continue
        for path in [paths] if isinstance(paths, (str, Path)) else paths:
            if same_file(output, path):
                raise OutputIsInputError(
                    f"{flag} {output} is the {source} file {path} this run reads; "
                    "write it elsewhere"
                )


def save_after_work(prog: str, path: Path, text: str, overwrite: bool, lost: str) -> int:
    """Write a command's figures to ``path`` once its work is done. A failure now is not the
    user's error: it is said on standard error (``prog: error: why; lost``) and gives status
    1, else 0."""
    try:
        check_writable(path, overwrite)
        write_text(path, text, overwrite=overwrite)
    except OSError as exc:
        error(prog, f"{describe_error(exc)}; {lost}")
        return 1
    return 0


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def strict_json(value: Any, indent: int | None = 1) -> str:
    """JSON text that any parser reads: non-finite numbers become null."""
    return json.dumps(finite(value), indent=indent, allow_nan=False)


def describe_output_error(exc: BaseException) -> str:
    """``describe_error``, also for a file written through two temporary names (a writer
    that is itself atomic, handed the temporary name of an ``OutputSet``)."""
    if isinstance(exc, OSError) and exc.filename:
        exc.filename = str(final_name(final_name(exc.filename)))
    return describe_error(exc)


def previous_name(final: Path) -> Path:
    """Where an ``OutputSet`` keeps the file that ``final`` held while it places the new one."""
    return final.with_name(f"previous-{final.name}")


# NOTE: a set is placed all or none when placing fails, but not when the run is killed
# between two renames: then some finals are new and some old (each one whole), and the old
# files stay under their ``previous-`` names until a later run into the same folder.
def keep_aside(final: Path, backup: Path) -> None:
    """Give the file at ``final`` the second name ``backup``, so that it can be put back. A
    hard link leaves ``final`` in place until the new file replaces it in one rename: a run
    killed meanwhile never leaves the name empty. Where the file system has no hard links
    (FAT, some network shares), the file is moved instead. A file already under ``backup``
    (left by a killed run of the same process number: in a container every run is process 1)
    is an older copy of the file at ``final``, and is replaced."""
    with contextlib.suppress(FileNotFoundError):
        backup.unlink()
    try:
        os.link(final, backup, follow_symlinks=False)
    except NotImplementedError:  # a platform that cannot link a symbolic link itself
        os.replace(final, backup)
    except OSError as exc:
        if exc.errno not in NO_HARD_LINKS:
            raise
        os.replace(final, backup)


class OutputSet:
    """Files written under temporary names and placed together by ``commit``.

    If placing any of them fails (or the run is interrupted), the ones already placed are
    put back as they were, so the final names hold either all new files or the old ones.
    Leaving the ``with`` block without a commit removes the temporary files, and the
    folders this set made if they are empty.
    """

    def __init__(self, overwrite: bool):
        self.overwrite = overwrite
        self._files: dict[Path, Path] = {}  # final -> temporary
        self._made: list[Path] = []

    def path(self, final: Path) -> Path:
        """The temporary path to write ``final`` under (its folder is made if missing)."""
        final = Path(final)
        missing = [f for f in (final.parent, *final.parent.parents) if not f.exists()]
        final.parent.mkdir(parents=True, exist_ok=True)
        self._made += [f for f in missing if f not in self._made]
        self._files[final] = temp_name(final)
        remove_killed_partial(final)
        if final.exists():  # else a killed run's copy of the earlier file may be the only one
            remove_killed_partial(previous_name(final))
        return self._files[final]

    def commit(self) -> None:
        """Give every file its final name, all or none."""
        placed: list[tuple[Path, Path | None]] = []
        try:
            for final, tmp in self._files.items():
                placed.append((final, self._place(tmp, final)))
        except BaseException:
            for final, backup in reversed(placed):
                if backup is not None:
                    os.replace(backup, final)
                else:
                    final.unlink(missing_ok=True)
            raise
        self._files.clear()
        self._made.clear()
        for _, backup in placed:
            if backup is not None:
                with contextlib.suppress(OSError):
                    backup.unlink()

    def _place(self, tmp: Path, final: Path) -> Path | None:
        """Place one file; returns where the file it replaced was moved, if any."""
        if final.is_dir() and not final.is_symlink():
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(final))
        backup = None
        if self.overwrite and (final.exists() or final.is_symlink()):
            backup = temp_name(previous_name(final))
            keep_aside(final, backup)
        try:
            place(tmp, final, self.overwrite)
        except BaseException:
            if backup is not None:
                os.replace(backup, final)
            raise
        return backup

    def discard(self) -> None:
        """Remove the temporary files not placed and the folders made for them, if empty."""
        for tmp in self._files.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._files.clear()
        for folder in sorted(self._made, key=lambda f: len(f.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._made.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.discard()


def save_arrays(path: Path, **arrays) -> None:
    """Write ``arrays`` as one .npz file at ``path``, whole or not at all.

    Raises:
        WorkNotSavedError: naming the file, when it cannot be written (a full disk, say).
    """
    try:
        with atomic_path(Path(path)) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    except OSError as exc:
        raise WorkNotSavedError(
            f"could not save {path} ({exc.strerror or exc}); nothing was written there"
        ) from None
