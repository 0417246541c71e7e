"""Pick the torch device the classifier and detector run on."""

import re

import torch

# cuda, or cuda:N for the Nth GPU, N written as torch reads it: ASCII digits, no leading 0
CUDA_NAME = r"cuda(?::(0|[1-9][0-9]*))?"


class DeviceError(ValueError):
    """A device the user asked for that this machine does not have."""


def resolve_device(name: str = "auto") -> torch.device:
    """Map ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` to a device that exists here."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(CUDA_NAME, name)
    if match is None:
        raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise DeviceError("CUDA was requested but no CUDA GPU is available (use --device cpu)")
    count = torch.cuda.device_count()
    if match.group(1) is not None and int(match.group(1)) >= count:
        raise DeviceError(f"no GPU {name}: this machine has {count} (cuda:0 to cuda:{count - 1})")
    return torch.device(name)
