"""Scale-out under torchrun: the same `mypt train` on N processes, one rank each (DDP)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def setup(device_kind: str) -> Dist:
    """Join the process group when launched by torchrun (RANK/WORLD_SIZE set), else a single rank."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Dist()
    info = Dist(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    if device_kind == "cuda":
        torch.cuda.set_device(info.local_rank)
    return info


def teardown(info: Dist) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(info: Dist, value: float | int, device: torch.device) -> float:
    """Sum a number over ranks (identity on one rank)."""
    if not info.enabled:
        return value
    t = torch.tensor(float(value), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.item()


def gather(info: Dist, obj: Any) -> list[Any]:
    """Every rank's object, in rank order (only used for the small audit records)."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world
    dist.all_gather_object(out, obj)
    return out


def any_rank(info: Dist, flag: bool, device: torch.device) -> bool:
    """True when the flag is set on any rank (a stop request reaches all ranks together)."""
    return all_sum(info, 1.0 if flag else 0.0, device) > 0 if info.enabled else flag
