"""Classifier architectures (teacher and student) and their shared checkpoint format.

The weights the app loads by default live beside this file as ``teacher.pt`` and
``student.pt``; ``MODEL_DIR`` points there.
"""

from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent
CLASS_NAMES = ("mask", "no_mask")
