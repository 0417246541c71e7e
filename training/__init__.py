"""Training, evaluation and export commands for MaskWatch's face detector and classifiers."""

import app  # noqa: F401 - sets the environment that OpenCV and torch read when they load
