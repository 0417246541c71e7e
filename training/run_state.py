"""The folder that keeps one training run's per-epoch state, so ``--resume`` can continue it.

A run's folder is named for its data and every setting that changes the weights
(``run_key``); ``run.json`` inside says which settings those were, so a ``--resume`` that
finds no folder of its own can say which kept run differs, and in what (its method and seed
too, when no run of this method and seed is kept). A lock beside the folder lets only one run
use it at a time: two runs sharing ``--work-dir`` with the same settings would otherwise move
or delete each other's state.

Known shortcoming: the lock is ``fcntl.flock``, which exists on Linux and macOS only; on
other systems runs are not guarded against each other.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from app.atomic import write_text

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

log = logging.getLogger(__name__)

SETTINGS_FILE = "run.json"
ASIDE_SUFFIX = "-interrupted"
# A state folder's name, as run_key and set_aside make it: method, seed, settings digest.
FOLDER_NAME = re.compile(rf"(?P<method>.+)-seed(?P<seed>\d+)-[0-9a-f]{{10}}({ASIDE_SUFFIX})?")


def states_in(work_dir: Path) -> Path:
    """The folder of ``--work-dir`` that holds every run's training state."""
    return Path(work_dir) / "train-state"


class StateInUseError(RuntimeError):
    """Another training run, alive now, uses the same state folder."""


def run_key(settings: dict) -> str:
    """The folder name for a run with these ``run_settings``."""
    digest = hashlib.sha1(repr(list(settings.values())).encode()).hexdigest()[:10]
    return f"{settings['--method']}-seed{settings['--seed']}-{digest}"


@contextlib.contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """Hold ``state_dir`` for this run until the block ends (or the process dies).

    Raises:
        StateInUseError: when another living run holds it.
    """
    if fcntl is None:
        yield
        return
    state_dir.parent.mkdir(parents=True, exist_ok=True)
    # The lock file stays: removing it would let a third run lock a fresh file meanwhile.
    with open(state_dir.with_name(state_dir.name + ".lock"), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateInUseError(
                f"another training run with the same data and settings is using "
                f"{state_dir} now; wait for it to finish, or give this run another --work-dir"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def record_settings(state_dir: Path, settings: dict) -> None:
    """Write the run's settings into its state folder (made here if need be)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    write_text(state_dir / SETTINGS_FILE, json.dumps(settings, indent=1), overwrite=True)


def has_epochs(state_dir: Path) -> bool:
    """Whether a state folder holds a finished epoch of some role (not just run.json)."""
    return any(state_dir.glob("*-state.pt"))


def runs_of(states: Path, method: str, seed: int) -> list[Path]:
    """The kept state folders in ``states`` of runs of ``method`` at ``seed``, any settings
    (set aside ones included)."""
    return sorted(p for p in states.glob(f"{method}-seed{seed}-*") if p.is_dir())


def every_run(states: Path) -> list[Path]:
    """Every kept state folder in ``states``, of any method and seed."""
    return sorted(p for p in states.glob("*") if p.is_dir() and FOLDER_NAME.fullmatch(p.name))


def aside_of(state_dir: Path) -> Path:
    """Where ``set_aside`` keeps the state of a run with the same settings."""
    return state_dir.with_name(state_dir.name + ASIDE_SUFFIX)


def take_back(state_dir: Path) -> bool:
    """For --resume: bring back the state a run without --resume set aside (the same
    settings, so the run the user means); whether there was one."""
    aside = aside_of(state_dir)
    if not aside.is_dir() or has_epochs(state_dir):
        return False
    shutil.rmtree(state_dir, ignore_errors=True)  # a fresh run stopped before its first epoch
    aside.rename(state_dir)
    log.warning("--resume: continuing the interrupted run that was set aside in %s", aside)
    return True


def set_aside(state_dir: Path) -> Path | None:
    """Move an interrupted run's state out of a fresh run's way, keeping it (one earlier
    state per settings); returns where it went, or None when there was none."""
    if not state_dir.exists():
        return None
    if not has_epochs(state_dir):  # stopped before its first epoch: no work in it
        shutil.rmtree(state_dir, ignore_errors=True)  # and an earlier run set aside stays
        return None
    aside = aside_of(state_dir)
    shutil.rmtree(aside, ignore_errors=True)
    state_dir.rename(aside)
    log.warning(
        "an interrupted run with these data and settings is kept in %s; this run starts anew "
        "(to continue that one instead, stop this run and run again with --resume)",
        aside,
    )
    return aside


def _kept_settings(folder: Path) -> dict | None:
    try:
        saved = json.loads((folder / SETTINGS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) else None


def other_runs(state_dir: Path, settings: dict) -> list[str]:
    """Kept state folders of runs with other settings (see ``_kept_runs`` for which), each
    said as "FOLDER (differs in --lr: 0.001 there)"; folders from before run.json existed
    are named without the difference when their name is of this method and seed."""
    return [
        _said(folder, differs)
        for folder, differs in _kept_runs(state_dir.parent, settings)
        if folder != state_dir
    ]


def none_resumable(states: Path, settings: dict, unknown: tuple[str, ...]) -> list[str]:
    """Before the data are read: the kept runs, said as by ``other_runs`` but for the
    settings named in ``unknown`` (not known yet, such as the data's digest), when each
    differs in a known one; empty when one may still match or none is kept. So a --resume
    that cannot match is refused before minutes of cropping."""
    known = [
        (folder, differs and [d for d in differs if d.split(":")[0] not in unknown])
        for folder, differs in _kept_runs(states, settings)
    ]
    if any(not differs for _, differs in known):  # None: a folder without run.json may be it
        return []
    return [_said(folder, differs) for folder, differs in known]


def _kept_runs(states: Path, settings: dict) -> list[tuple[Path, list[str] | None]]:
    """Each kept run with its differences from ``settings`` ("NAME: VALUE there"): the runs
    of the method and seed, or every kept run when there is none of them, so that a
    --method or --seed changed by mistake is named as any other setting is, not taken for no
    run kept. None for a folder without a readable run.json that may be this run."""
    mine = json.loads(json.dumps(settings))  # tuples as lists, as run.json holds them
    folders = runs_of(states, settings["--method"], settings["--seed"]) or every_run(states)
    return [(folder, _differences(folder, mine)) for folder in folders]


def _differences(folder: Path, mine: dict) -> list[str] | None:
    """How the run kept in ``folder`` differs from the settings ``mine``, a setting only one
    of them names included; for a folder without a readable run.json, see ``_by_name``."""
    kept = _kept_settings(folder)
    if kept is None:
        return _by_name(folder, mine)
    names = list(mine) + [name for name in kept if name not in mine]
    return [
        f"{name}: {kept.get(name)!r} there" for name in names if kept.get(name) != mine.get(name)
    ]


def _by_name(folder: Path, mine: dict) -> list[str] | None:
    """The method and seed a folder's name gives, where they differ from ``mine``; None when
    they do not (or the name is not a run's): its other settings are unknown."""
    named = FOLDER_NAME.fullmatch(folder.name)
    if named is None:
        return None
    there = {"--method": named["method"], "--seed": int(named["seed"])}
    differs = [f"{name}: {value!r} there" for name, value in there.items() if value != mine[name]]
    return differs or None


def _said(folder: Path, differs: list[str] | None) -> str:
    if differs is None:
        return str(folder)
    return f"{folder} (differs in {', '.join(differs) or 'nothing it names'})"
