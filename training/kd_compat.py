"""Load KD_Lib's vision distillers without importing its text models.

``KD_Lib.KD/__init__`` imports transformers and torchtext for BERT2LSTM. We register bare
package objects for ``KD_Lib.KD`` and ``KD_Lib.KD.vision`` so that the vision submodules
import on their own. Everything in MaskWatch gets KD_Lib classes from here.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path


def _register_bare_packages() -> None:
    import KD_Lib

    kd_dir = Path(KD_Lib.__file__).resolve().parent / "KD"
    for name, folder in (("KD_Lib.KD", kd_dir), ("KD_Lib.KD.vision", kd_dir / "vision")):
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(folder)]
            package.__package__ = name
            sys.modules[name] = package


_register_bare_packages()

BaseClass = importlib.import_module("KD_Lib.KD.common.base_class").BaseClass
VanillaKD = importlib.import_module("KD_Lib.KD.vision.vanilla.vanilla_kd").VanillaKD
NoisyTeacher = importlib.import_module("KD_Lib.KD.vision.noisy.noisy_teacher").NoisyTeacher
MessyCollab = importlib.import_module("KD_Lib.KD.vision.noisy.messy_collab").MessyCollab
SelfTraining = importlib.import_module("KD_Lib.KD.vision.teacher_free.self_training").SelfTraining

__all__ = ["BaseClass", "VanillaKD", "NoisyTeacher", "MessyCollab", "SelfTraining"]
