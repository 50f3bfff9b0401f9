"""The one device and precision resolver: training, generation, chat and eval all ask here.

Also what the GPU fast path asks of the device: whether to compile, TF32 matmuls, the peak
FLOP/s that MFU divides by, and the peak memory a run used.
"""

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


def use_compile(setting: str | bool, device: torch.device) -> bool:
    """The `compile` key: true, false, or "auto" = on for a CUDA GPU (where Triton is), off on the CPU."""
    if setting == "auto":
        if device.type != "cuda":
            return False
        try:
            from torch.utils._triton import has_triton
        except ImportError:  # pragma: no cover - a torch without that helper
            return True
        return has_triton()
    return bool(setting)


def fast_math(device: torch.device, precision: str) -> None:
    """TF32 for fp32 matmuls on Ampere and newer GPUs (what autocast leaves in fp32), unless the
    config asks for plain fp32 (precision = "fp32"). Process-wide; nothing on the CPU."""
    if device.type == "cuda" and precision != "fp32":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


# Dense (no sparsity) bf16 tensor-core peak of one GPU, TFLOP/s, fp32 accumulation, from the
# vendor's data sheets; fp16 for the GPUs without bf16 (T4, V100). Matched against the name
# torch reports, most specific first. MFU divides by this; `peak_tflops` overrides it.
PEAK_TFLOPS: tuple[tuple[str, float | None], ...] = (
    ("GB200", 2500.0), ("B200", 2250.0),
    ("H100 PCIE", 756.0), ("H100 NVL", 835.0), ("H200 NVL", 836.0), ("GH200", 989.0), ("H200", 989.0),
    ("H100", 989.0), ("H800", 989.0), ("H20", 148.0),
    ("A100", 312.0), ("A800", 312.0), ("A30", 165.0), ("A10G", None), ("A10", 125.0),
    ("L40S", 362.0), ("L40", 181.0), ("L4", 121.0),
    ("RTX 6000 ADA", 364.0), ("RTX A6000", 155.0), ("RTX 4090", 165.0), ("RTX 3090", 71.0),
    ("V100", 125.0), ("T4", 65.0),
)


def peak_flops(device: torch.device, override_tflops: float | None = None) -> float | None:
    """Peak FLOP/s of one device for MFU: the override, else the table's figure for this GPU's
    name; None for a GPU the table lacks and for the CPU (give `peak_tflops` for those)."""
    if override_tflops is not None:
        return override_tflops * 1e12
    if device.type != "cuda":
        return None
    try:
        name = torch.cuda.get_device_name(device).upper()
    except (RuntimeError, AssertionError):
        return None
    return peak_of_name(name)


def peak_of_name(name: str) -> float | None:
    """The table's peak FLOP/s for a GPU name such as "NVIDIA H100 80GB HBM3" (None: not listed)."""
    name = name.upper().replace("-", " ")
    for key, tflops in PEAK_TFLOPS:
        if key in name:
            return None if tflops is None else tflops * 1e12  # None: a variant without a published figure
    return None


def peak_memory(device: torch.device) -> int | None:
    """Most bytes the run's tensors held on the GPU so far (None on the CPU)."""
    if device.type != "cuda":
        return None
    return int(torch.cuda.max_memory_allocated(device))
