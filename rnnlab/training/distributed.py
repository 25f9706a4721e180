"""Data-parallel training under `torchrun`: a few explicit lines around the one training loop.

    torchrun --nproc_per_node N -m rnnlab train CORPUS_OR_TOKENS -o MODEL_DIR --batch-size B ...

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; DistributedDataParallel averages gradients in backward,
and only rank 0 writes files or prints. No home-made launcher: without those variables this is a
single-process run.

How the data is laid out (data/batching.py): N ranks with --batch-size B each see exactly what ONE process
with --batch-size N*B sees. For the sequence objective every rank cuts the whole stream into the same N*B
truncated-BPTT lanes (same row length, same per-epoch offset, same number of steps) and rank r reads lanes
r*B .. (r+1)*B-1, views into the stream (a token store's memory map is shared through the page cache, not
copied per rank). For the window and prefix objectives every rank draws the same shuffled order, cuts it
into global batches of N*B and takes the r-th B-slice of each; an incomplete last global batch is dropped
under DDP, so no rank gets an empty or shorter batch. With equal per-rank batches the average of the ranks'
mean gradients is the one process's mean gradient, so (dropout 0) the weights after K steps equal the one
process's to fp32 rounding: tests/test_distributed.py checks it. The learning rate is not scaled: N ranks of
B train like one process of N*B, and its --lr is the one to give.

Multi-node is torchrun's own rendezvous, started once on every node with the same arguments:

    torchrun --nnodes M --nproc_per_node N --rdzv-backend c10d --rdzv-endpoint HOST:PORT \
        -m rnnlab train TOKENS_DIR -o MODEL_DIR --batch-size B ...

HOST:PORT is a reachable address of one of the nodes (M*N ranks in all, each with batch B: the one
process it matches has batch M*N*B). Every rank reads the training data itself, so every node needs it at
the same path, on its local disk or on shared storage: run `rnnlab prepare CORPUS -o TOKENS_DIR` on each
node (or once on shared storage) and train from TOKENS_DIR. `rnnlab train CORPUS` builds the store under
MODEL_DIR on global rank 0 and the other ranks then open it there, and `--resume` reads MODEL_DIR's
checkpoint on every rank: both need MODEL_DIR on shared storage. Only global rank 0 writes MODEL_DIR.
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


# ---------------------------------------------------------------------------------------- agreeing ranks
# Under DDP the ranks hold equal weights only while they take the same decisions at the same steps; these
# make the ones the loop takes from local facts (a clock, an evaluation, a checkpoint) shared.

def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def agreed_max(value: float, device: torch.device) -> float:
    """The largest of every rank's `value` (the slowest rank's clock), so all ranks stop at one step."""
    if not _active():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def from_main(obj):
    """Rank 0's `obj` on every rank (evaluation metrics: every rank then decides as rank 0 does)."""
    if not _active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_lanes(state):
    """Every rank's carried state side by side along the lane dimension ([L, N*B, H], rank r's lanes at
    r*B..(r+1)*B-1: the layout of one process with batch N*B), or `state` itself in one process."""
    if state is None or not _active():
        return state

    def cat(s: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(s) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, s.contiguous())
        return torch.cat(parts, dim=1)

    return _each(cat, state)


def own_lanes(state, batch_size: int):
    """This rank's B lanes of a state gathered by `gather_lanes` (all of it in one process)."""
    if state is None or not _active():
        return state
    mine = slice(dist.get_rank() * batch_size, (dist.get_rank() + 1) * batch_size)
    return _each(lambda s: s[:, mine].contiguous(), state)


def _each(fn, state):
    """fn of each tensor of a recurrent state (an LSTM's (h, c) tuple, or one tensor)."""
    return tuple(fn(s) for s in state) if isinstance(state, tuple) else fn(state)


def gather_rng_states(device: torch.device) -> list[torch.Tensor] | None:
    """Every rank's torch generator state (rank order), so each rank resumes its own dropout stream."""
    if not _active():
        return None
    state = torch.get_rng_state().to(device)  # NCCL gathers device tensors only
    parts = [torch.empty_like(state) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, state)
    return [part.cpu() for part in parts]


def rank() -> int:
    return dist.get_rank() if _active() else 0


def world_size() -> int:
    return dist.get_world_size() if _active() else 1
