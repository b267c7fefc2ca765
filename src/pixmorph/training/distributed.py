"""Data-parallel training across processes (torchrun): setup, rank roles and helpers."""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job (world_size 1: a plain single-process run)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes logs, samples and checkpoints."""
        return self.rank == 0


SINGLE = DistInfo()


def from_env() -> DistInfo:
    """The job layout torchrun put in the environment (RANK, WORLD_SIZE, LOCAL_RANK)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    return DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def setup(device_name: str, timeout_s: float = 600.0) -> tuple[DistInfo, str]:
    """Join the process group when launched by torchrun; returns the info and the device to use.

    NCCL on CUDA, gloo on the CPU. Collectives time out after `timeout_s`, so a crashed peer ends
    the job with an error instead of a hang.
    """
    info = from_env()
    if not info.enabled:
        return info, device_name
    use_cuda = (
        torch.cuda.is_available()
        and device_name in ("auto", "cuda")
        or device_name.startswith("cuda")
    )
    if use_cuda:
        torch.cuda.set_device(info.local_rank)
        device_name = f"cuda:{info.local_rank}"
    elif device_name == "auto":
        device_name = "cpu"
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    log.debug("rank %d of %d on %s", info.rank, info.world_size, device_name)
    return info, device_name


def teardown() -> None:
    """Leave the process group (all ranks reach this together at the end of training)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def all_gather_tensor(t: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's copy of an equally-shaped tensor."""
    out = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(out, t)
    return out
