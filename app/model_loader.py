"""Load the pipeline and switch classifiers in the background, so the window never freezes.

A model whose weights fail to load does not end the app: the other model is used instead
and the reason is reported as one line. Detector weights that fail to load give way to
MTCNN's stock weights the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from PySide6.QtCore import QThread, Signal

from app.config import PipelineConfig
from app.device import DeviceError
from app.pipeline import MODEL_NAMES, Pipeline
from models.checkpoint import CheckpointError
from models.detector_checkpoint import DetectorWeightsError

log = logging.getLogger(__name__)


def other_model(name: str) -> str:
    return next(m for m in MODEL_NAMES if m != name)


@dataclass
class LoadReport:
    """A ready pipeline and, per model that could not be loaded, the one-line reason."""

    pipeline: Pipeline
    unavailable: dict[str, str] = field(default_factory=dict)
    detector_problem: str | None = None  # why the chosen detector weights gave way to stock


def build_pipeline(config: PipelineConfig, weights: dict[str, Path]) -> LoadReport:
    """Build the pipeline, with stock detector weights when the chosen ones fail to load."""
    try:
        return build_classifiers(config, weights)
    except DetectorWeightsError as exc:
        log.warning("detector weights unavailable: %s; using MTCNN's stock weights", exc)
        stock = replace(config, detector=replace(config.detector, weights="stock"))
        return replace(build_classifiers(stock, weights), detector_problem=str(exc))


def build_classifiers(config: PipelineConfig, weights: dict[str, Path]) -> LoadReport:
    """Build the pipeline with ``config.model``, falling back to the other model.

    Both classifiers are loaded up front so that a later switch is instant and a bad
    weights file is reported at start-up rather than in the middle of playback.

    Raises:
        CheckpointError: when neither model can be loaded (both reasons in the message).
    """
    wanted, other = config.model, other_model(config.model)
    try:
        pipeline = Pipeline(config, weights)
    except CheckpointError as exc:
        log.warning("%s model unavailable: %s", wanted, exc)
        try:
            pipeline = Pipeline(replace(config, model=other), weights)
        except CheckpointError as second:
            raise CheckpointError(f"no model could be loaded: {exc}; {second}") from None
        return LoadReport(pipeline, {wanted: str(exc)})
    try:
        pipeline.classifier(other)
    except CheckpointError as exc:
        log.warning("%s model unavailable: %s", other, exc)
        return LoadReport(pipeline, {other: str(exc)})
    return LoadReport(pipeline)


class PipelineLoader(QThread):
    """Runs ``build_pipeline`` off the GUI thread."""

    loaded = Signal(object)  # LoadReport
    failed = Signal(str)

    def __init__(self, config: PipelineConfig, weights: dict[str, Path]):
        super().__init__()
        self.config = config
        self.weights = weights

    def run(self) -> None:
        try:
            report = build_pipeline(self.config, self.weights)
        except Exception as exc:  # the window shows any reason instead of dying
            if not isinstance(exc, (CheckpointError, DeviceError)):
                log.exception("building the pipeline failed")
            self.failed.emit(str(exc) or type(exc).__name__)
            return
        self.loaded.emit(report)


class ModelSwitcher(QThread):
    """Makes ``name`` the pipeline's active classifier; the next frame uses it."""

    switched = Signal(str)
    failed = Signal(str, str)  # model name, one-line reason

    def __init__(self, pipeline: Pipeline, name: str):
        super().__init__()
        self.pipeline = pipeline
        self.name = name

    def run(self) -> None:
        try:
            self.pipeline.use(self.name)
        except CheckpointError as exc:
            self.failed.emit(self.name, str(exc))
            return
        self.switched.emit(self.name)
