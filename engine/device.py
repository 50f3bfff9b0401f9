"""The one device and precision resolver: training, generation, chat and eval all ask here."""

from __future__ import annotations

import contextlib
import os
from typing import ContextManager

import torch

from .errors import MyptError


class DeviceError(MyptError, ValueError):
    """A device or precision this machine cannot give, worded for the user."""


def pick_device(name: str = "auto") -> torch.device:
    """`auto` is cuda when a GPU is available, else cpu; asking for cuda without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"device = {name!r} but no CUDA GPU is available; use device = \"cpu\" or \"auto\"")
    return torch.device(name)


def pick_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (None = plain fp32): `auto` is bf16 on GPUs that support it, else fp16
    on a GPU, and fp32 on the CPU."""
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "fp16" and device.type != "cuda":
        raise DeviceError("precision = \"fp16\" needs a CUDA GPU; use fp32 or bf16 on the CPU")
    return torch.bfloat16 if precision == "bf16" else torch.float16


def memory_available(device: torch.device) -> int | None:
    """Bytes free for a run on `device` now (None when it cannot be known): the GPU's free memory,
    or the machine's available memory (MemAvailable) for the CPU."""
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def autocast(device: torch.device, dtype: torch.dtype | None) -> ContextManager:
    """Mixed precision where asked for; a no-op context in fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
