"""Data parallelism through torchrun: gloo on CPU, NCCL on GPU.

``torchrun --nproc_per_node=N -m lstmkit train ...`` sets RANK, WORLD_SIZE and LOCAL_RANK; the
trainer sees them and splits every global batch into N equal shares. Gradients are averaged by
DistributedDataParallel, so N processes take the same steps as one process with the whole batch.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str | None = None, *, timeout_s: float = 300.0) -> Distributed:
    """Joins the process group that torchrun describes in the environment, if there is one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if world <= 1:
        return Distributed(device=torch.device(device or ("cuda" if cuda else "cpu")))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if cuda else "gloo", timeout=datetime.timedelta(seconds=timeout_s)
        )
    where = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(where)
    return Distributed(rank=rank, world_size=world, local_rank=local, device=where)


def teardown(info: Distributed, *, clean: bool = True) -> None:
    """Leaves the process group. After a clean run every process first waits for the others:
    gloo aborts a process whose peer tears its connections down while it is still sending."""
    if info.enabled and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


def mean_across(info: Distributed, value: torch.Tensor) -> torch.Tensor:
    """The mean of a scalar tensor over all processes (itself without data parallelism)."""
    if not info.enabled:
        return value
    total = value.detach().clone()
    dist.all_reduce(total)
    return total / info.world_size
