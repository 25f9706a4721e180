"""Data-parallel training under `torchrun`: a few explicit lines around the one training loop.

    torchrun --nproc_per_node 2 -m rnnlab train CORPUS -o MODEL_DIR ...

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; each rank reads its own contiguous shard of the token
stream, DistributedDataParallel averages gradients in backward, and only rank 0 writes files or prints.
No home-made launcher: without those variables this is a single-process run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def from_environment() -> DistEnv:
    """The torchrun environment, initialising the process group when there is more than one rank."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv()
    env = DistEnv(rank=int(os.environ["RANK"]), world_size=world,
                  local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return env


def device_for(env: DistEnv, requested: str) -> str:
    if env.enabled and requested in ("auto", "cuda") and torch.cuda.is_available():
        torch.cuda.set_device(env.local_rank)
        return f"cuda:{env.local_rank}"
    return requested


def wrap(model: torch.nn.Module, env: DistEnv, device: torch.device) -> torch.nn.Module | None:
    """DDP wrapper for multi-rank runs (it broadcasts rank 0's initial weights), else None."""
    if not env.enabled:
        return None
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def barrier(env: DistEnv) -> None:
    if env.enabled:
        dist.barrier()


def shutdown(env: DistEnv) -> None:
    if env.enabled and dist.is_initialized():
        dist.destroy_process_group()
