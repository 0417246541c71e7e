"""The detector tuned so far, kept after each finished stage so ``tune_detector --resume``
goes on from the next stage instead of tuning P-, R- and O-Net again.

The state file is named for every setting that changes the weights (the scenes and faces
photos included, by name, size and time), so a resume with other settings or changed
photos never mixes in the wrong nets. A stage is deterministic given its settings and the
nets before it, so a resumed run ends with the weights an uninterrupted one would have.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
from pathlib import Path

from models import detector_checkpoint
from training.dataset_files import files_under

log = logging.getLogger(__name__)

STATE_FOLDER = "detector-state"


def _listing(folder: Path | None) -> list | None:
    """Each file under ``folder`` (as the sets are read: linked folders followed) as (name,
    size, modification time): cheap to take, and it changes when a photo or annotation is
    added, removed or edited."""
    if folder is None:
        return None
    listing = []
    for path in files_under(Path(folder)):
        stat = path.stat()
        listing.append((str(path), stat.st_size, stat.st_mtime_ns))
    return listing


def settings_of(args: argparse.Namespace, start_from: dict | str) -> dict:
    """What the tuned weights depend on; --out, --device and the flags of output alone are
    left out (the device changes the figures only in rounding). ``start_from`` is the run's
    record of its starting weights ("stock", or the file with its digest)."""
    return {
        "scenes": str(Path(args.scenes).resolve()),
        "scenes_files": _listing(args.scenes),
        "faces": str(Path(args.faces).resolve()) if args.faces else None,
        "faces_files": _listing(args.faces),
        "start_from": start_from["sha1"] if isinstance(start_from, dict) else start_from,
        "stages": list(args.stages),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "min_face": args.min_face,
        "mine_thresholds": list(args.mine_thresholds),
        "seed": args.seed,
    }


def state_path(work_dir: Path, settings: dict) -> Path:
    """Where a run with ``settings`` keeps its finished stages."""
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return Path(work_dir) / STATE_FOLDER / f"seed{settings['seed']}-{digest}.pt"


def keep(path: Path, mtcnn, stages: dict) -> None:
    """Write the nets as they are now and the records of the stages finished so far
    (complete or not at all: a stop while writing leaves the previous state)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    detector_checkpoint.save(path, mtcnn, {"finished_stages": stages})


def take_back(path: Path, mtcnn, stages: list[str]) -> dict:
    """Load a kept state into ``mtcnn``; returns the finished stages' records (empty when
    there is no state, or one that cannot be used, which is then said and passed over).
    ``stages`` are the run's stages: a state may only have finished some of them."""
    if not path.is_file():
        return {}
    trial = copy.deepcopy(mtcnn)  # a state that fails part way must not leave mixed nets
    try:
        meta = detector_checkpoint.load_into(path, trial)
        finished = meta.get("finished_stages")
        if not isinstance(finished, dict) or not set(finished) <= set(stages):
            raise detector_checkpoint.DetectorWeightsError(
                f"{path} does not record which of {', '.join(stages)} it finished"
            )
    except detector_checkpoint.DetectorWeightsError as exc:
        log.warning("--resume: the kept state cannot be used (%s); starting anew", exc)
        return {}
    mtcnn.load_state_dict(trial.state_dict())
    return dict(finished)
