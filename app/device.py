"""Pick the torch device the classifier and detector run on."""

import torch


class DeviceError(ValueError):
    """A device the user asked for that this machine does not have."""


def resolve_device(name: str = "auto") -> torch.device:
    """Map ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` to a device that exists here."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError("CUDA was requested but no CUDA GPU is available (use --device cpu)")
        return torch.device(name)
    raise DeviceError(f"unknown device {name!r}; use auto, cpu or cuda")
