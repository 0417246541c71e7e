"""Shared fixtures: real images from tests/fixtures and videos the tests write from them."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import app  # noqa: F401 - first: sets the environment that OpenCV and torch read on load

# isort: split
import cv2
import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ROOT = FIXTURES.parents[1]

# A shell starts background jobs with Ctrl-C ignored, and the commands the tests start would
# inherit that: the Ctrl-C tests would then see a run that cannot be interrupted. With a
# handler here, each command starts with Ctrl-C at its default, as from a terminal.
signal.signal(signal.SIGINT, signal.default_int_handler)


def run_app(*args, timeout=240):
    """Run ``python -m app --headless --quiet ARGS`` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "app", "--headless", "--quiet", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def shell(command: str, timeout=300):
    """Run a bash command line from the repository root (for pipes and closed streams)."""
    return subprocess.run(
        ["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def start_app(*args):
    """Start ``python -m app --headless --quiet ARGS`` without waiting (to interrupt it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "app", "--headless", "--quiet", *map(str, args)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )


def fixture_bgr(name: str) -> np.ndarray:
    image = cv2.imread(str(FIXTURES / name), cv2.IMREAD_COLOR)
    assert image is not None, name
    return image


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    """Write BGR frames (all the same size) as an mp4v video."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def on_canvas(image: np.ndarray, width: int = 640, height: int = 480) -> np.ndarray:
    """Place an image, scaled to fit, on a grey 640x480 frame as a webcam would see it."""
    canvas = np.full((height, width, 3), 110, np.uint8)
    scale = min(width * 0.6 / image.shape[1], height * 0.8 / image.shape[0])
    resized = cv2.resize(image, None, fx=scale, fy=scale)
    h, w = resized.shape[:2]
    y, x = (height - h) // 2, (width - w) // 2
    canvas[y : y + h, x : x + w] = resized
    return canvas


def clip_frames(*parts: tuple[str, int]) -> list[np.ndarray]:
    """640x480 frames of one fixture face: (kind, count) parts, kind black, colour or grey."""
    colour = on_canvas(fixture_bgr("no_mask_1.jpg"))
    kinds = {
        "black": np.zeros_like(colour),
        "colour": colour,
        "grey": cv2.cvtColor(cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR),
    }
    return [kinds[kind] for kind, count in parts for _ in range(count)]


@pytest.fixture(scope="session", autouse=True)
def no_output_folders_left_behind():
    """Windows made without settings write into one temporary folder of this process; it is
    the tests' litter, not a user's files, so it goes when the session ends."""
    yield
    from app.preferences import temporary_folders

    shutil.rmtree(next(iter(temporary_folders().values())).parent, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_pipeline():
    from app.config import PipelineConfig
    from app.pipeline import Pipeline

    return Pipeline(PipelineConfig(device="cpu"))


@pytest.fixture
def pipeline(shared_pipeline):
    """The session's pipeline (its models load once), with the detector's settings and the
    active model put back after each test, so that no test sees another's choices."""
    from app.detector import FaceDetector

    detector = shared_pipeline.detector
    config, model = detector.config, shared_pipeline.active
    yield shared_pipeline
    FaceDetector.configure(detector, config)  # the class's: a test may replace the method
    shared_pipeline.use(model)


@pytest.fixture(scope="session")
def no_mask_video(tmp_path_factory) -> Path:
    frame = on_canvas(fixture_bgr("no_mask_1.jpg"))
    return write_video(tmp_path_factory.mktemp("video") / "no_mask.mp4", [frame] * 12)


@pytest.fixture(scope="session")
def mixed_video(tmp_path_factory) -> Path:
    mask, no_mask = on_canvas(fixture_bgr("mask_2.png")), on_canvas(fixture_bgr("no_mask_2.jpg"))
    frames = [mask] * 6 + [no_mask] * 6
    return write_video(tmp_path_factory.mktemp("video") / "mixed.mp4", frames)


@pytest.fixture
def settings(tmp_path):
    """Window settings in a temporary INI file, never the user's own."""
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "maskwatch.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def prefs(tmp_path):
    """Preferences whose output folders all lie under the test's temporary folder."""
    from app.preferences import Preferences

    prefs = Preferences.defaults(temporary=True)
    for name in ("alerts_dir", "snapshots_dir", "recordings_dir", "exports_dir"):
        setattr(prefs, name, tmp_path / name)
    return prefs


FIXTURE_SCENES = ("maksssksksss129", "maksssksksss289", "maksssksksss52")


def scenes_copy(root: Path) -> Path:
    """The three fixture scenes in the images/ + annotations/ layout under ``root``."""
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for name in FIXTURE_SCENES:
        shutil.copy(FIXTURES / f"{name}.jpg", root / "images")
        shutil.copy(FIXTURES / f"{name}.xml", root / "annotations")
    return root
