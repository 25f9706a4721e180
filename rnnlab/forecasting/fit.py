"""The training loop of the recurrent forecaster, one member of an ensemble after the other.

Per member: seed (seed + member), AdamW with weight decay on matrices, warm-up then cosine decay, gradient
clipping, one validation per epoch on the windows at the end of the training range, early stopping on it,
and the best weights kept. Every `checkpoint_every` epochs the whole state goes to disk atomically
(safetensors + JSON, never pickle), so an interrupted run resumes to the same numbers it would have
reached without the interruption.

    model_dir/training_state.safetensors   done.{m}.* best weights of finished members,
                                           live.* / best.* / optim.{i}.* / rng.* of the member in training,
                                           metadata "state": member, epoch, early stopping, schedule, ...
    model_dir/metrics.jsonl                one line per member and epoch

Shared with the language model's training (training/): the optimiser and schedule (optim.py), early
stopping, the descent step (loop.optimizer_step), the layout of optimiser and RNG state
(checkpoint.optimizer_tensors / rng_tensors) and the divergence error. Not yet shared: the epoch loop
itself (issue #12, section 5: training/loop.train taking a batch-loss and an evaluate callback), which
needs the loop to keep its best weights in memory when there is no directory, to checkpoint an ensemble
member by member, and to replay this loop's window order (one generator seeded with seed + member).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from rnnlab import _io
from rnnlab.config import TrainConfig
from rnnlab.errors import ModelDirError, TrainingDivergedError
from rnnlab.forecasting.config import ForecastConfig
from rnnlab.forecasting.windows import Windows
from rnnlab.training import checkpoint as ckpt
from rnnlab.training.early_stopping import EarlyStopping
from rnnlab.training.loop import optimizer_step
from rnnlab.training.optim import LRSchedule, make_optimizer
from rnnlab.training.seeding import seed_everything

STATE_FILE = "training_state.safetensors"
METRICS_FILE = "metrics.jsonl"



BatchLoss = Callable[[nn.Module, Windows], torch.Tensor]
EpochCallback = Callable[[dict], None]


def train_config(config: ForecastConfig, steps_per_epoch: int) -> TrainConfig:
    """The core TrainConfig the shared optimiser and schedule read."""
    total = config.epochs * steps_per_epoch
    return TrainConfig(epochs=config.epochs, lr=config.lr, weight_decay=config.weight_decay, clip=config.clip,
                       optimizer="adamw", schedule="cosine", warmup_steps=min(50, total // 10),
                       patience=config.patience, seed=config.seed, checkpoint_every=config.checkpoint_every,
                       device=config.device)


def _clone(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in state.items()}


class _Checkpoint:
    """Reads and writes training_state.safetensors and metrics.jsonl of one model directory."""

    def __init__(self, directory: Path | None):
        self.directory = directory

    def load(self) -> tuple[dict[str, torch.Tensor], dict, list[dict]]:
        path = self.directory / STATE_FILE
        tensors = _io.load_tensors(path)
        raw = _io.load_tensor_metadata(path).get("state")
        if raw is None:
            raise ModelDirError(f"{path} carries no training state")
        metrics_path = self.directory / METRICS_FILE
        lines = metrics_path.read_text(encoding="utf-8").splitlines() if metrics_path.is_file() else []
        try:
            return tensors, json.loads(raw), [json.loads(line) for line in lines if line.strip()]
        except json.JSONDecodeError as exc:
            raise ModelDirError(f"{self.directory}: training state or metrics are corrupt ({exc})") from None

    def save(self, tensors: dict[str, torch.Tensor], state: dict, metrics: list[dict]) -> None:
        if self.directory is None:
            return
        _io.write_text(self.directory / METRICS_FILE, "".join(json.dumps(m) + "\n" for m in metrics))
        _io.save_tensors(self.directory / STATE_FILE, tensors, metadata={"state": json.dumps(state)})


def _check_finite(record: dict, network: nn.Module, config: ForecastConfig) -> None:
    """Stop at the first epoch whose loss or weights are inf/NaN: early stopping would otherwise never see
    an improvement and keep the random initial weights as if they were trained."""
    losses = [record["train_loss"], record.get("val_loss", 0.0)]
    if all(math.isfinite(x) for x in losses) and all(torch.isfinite(p).all() for p in network.parameters()):
        return
    member = f" (ensemble member {record['member'] + 1})" if config.ensemble > 1 else ""
    clip = ", turn gradient clipping on (--clip 1)" if config.clip == 0 else ""
    raise TrainingDivergedError(
        f"training diverged: the loss became non-finite at epoch {record['epoch'] + 1}{member}; lower --lr "
        f"(now {config.lr:g}){clip}, or scale the data (--scaler, --log, --window-norm)")


def fit_members(make_network: Callable[[], nn.Module], batch_loss: BatchLoss, train: Windows,
                val: Windows | None, config: ForecastConfig, *, directory: str | Path | None = None,
                resume: bool = False, progress: bool = False,
                callback: EpochCallback | None = None) -> tuple[list[nn.Module], list[dict]]:
    """Train `config.ensemble` networks; returns them (best weights loaded, eval mode) and the metrics."""
    checkpoint = _Checkpoint(Path(directory) if directory is not None else None)
    finished: list[dict[str, torch.Tensor]] = []
    metrics: list[dict] = []
    partial: tuple[dict, dict] | None = None
    if resume:
        tensors, state, metrics = checkpoint.load()
        for member in range(state["finished_members"]):
            prefix = f"done.{member}."
            finished.append({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        if state.get("member") is not None:
            partial = (tensors, state)
        metrics = [m for m in metrics if m["member"] < len(finished) or
                   (partial is not None and m["member"] == state["member"] and m["epoch"] <= state["epoch"])]
    networks = []
    for member in range(config.ensemble):
        seed_everything(config.seed + member)
        network = make_network()
        if member < len(finished):
            network.load_state_dict(finished[member])
        else:
            best = _train_one(network, batch_loss, train, val, config, member, finished, metrics, checkpoint,
                              partial if partial and partial[1]["member"] == member else None, progress, callback)
            finished.append(best)
            network.load_state_dict(best)
        networks.append(network.eval())
    done = {f"done.{m}.{k}": v for m, weights in enumerate(finished) for k, v in weights.items()}
    checkpoint.save(done, {"finished_members": len(finished), "member": None}, metrics)
    return networks, metrics


def _train_one(network: nn.Module, batch_loss: BatchLoss, train: Windows, val: Windows | None,
               config: ForecastConfig, member: int, finished: list[dict], metrics: list[dict],
               checkpoint: _Checkpoint, partial: tuple[dict, dict] | None, progress: bool,
               callback: EpochCallback | None) -> dict[str, torch.Tensor]:
    batches = -(-len(train) // config.batch_size)
    settings = train_config(config, batches)
    optimizer = make_optimizer(network.parameters(), settings)
    schedule = LRSchedule(settings, total_steps=config.epochs * batches)
    stopper = EarlyStopping(patience=config.patience)
    shuffle = torch.Generator().manual_seed(config.seed + member)
    use_val = val is not None and len(val) > 0
    best = _clone(network.state_dict())
    start_epoch, step = 0, 0
    if partial is not None:
        tensors, state = partial
        network.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("live.")})
        best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
        ckpt.restore_optimizer(optimizer, tensors, state["param_groups"])
        stopper.load_state_dict(state["early_stopping"])
        schedule.load_state_dict(state["schedule"])
        ckpt.restore_rng(tensors)
        shuffle.set_state(tensors["rng.shuffle"])
        start_epoch, step = state["epoch"] + 1, state["step"]
        if state.get("member_done"):
            return best

    def save(epoch: int, member_done: bool) -> None:
        if checkpoint.directory is None:
            return
        optim_tensors, groups = ckpt.optimizer_tensors(optimizer)
        tensors = {f"done.{m}.{k}": v for m, weights in enumerate(finished) for k, v in weights.items()}
        tensors.update({f"live.{k}": v for k, v in network.state_dict().items()})
        tensors.update({f"best.{k}": v for k, v in best.items()})
        tensors.update(optim_tensors)
        tensors.update(ckpt.rng_tensors())
        tensors["rng.shuffle"] = shuffle.get_state()  # the window order, beside the shared generators
        state = {"finished_members": len(finished), "member": member, "epoch": epoch, "step": step,
                 "member_done": member_done, "early_stopping": stopper.state_dict(),
                 "schedule": schedule.state_dict(), "param_groups": groups}
        checkpoint.save(tensors, state, metrics)

    from tqdm.auto import tqdm

    desc = f"member {member + 1}/{config.ensemble}" if config.ensemble > 1 else "training"
    bar = tqdm(total=config.epochs, initial=start_epoch, desc=desc, file=sys.stderr, disable=not progress,
               leave=False, dynamic_ncols=True)
    epoch = start_epoch - 1
    try:
        for epoch in range(start_epoch, config.epochs):
            network.train()
            total, count = 0.0, 0
            for rows in torch.randperm(len(train), generator=shuffle).split(config.batch_size):
                lr = schedule.apply(optimizer, step)
                loss = batch_loss(network, train.subset(rows))
                optimizer_step(loss, optimizer, network.parameters(), config.clip)
                step += 1
                total += loss.item() * len(rows)
                count += len(rows)
            record = {"member": member, "epoch": epoch, "train_loss": total / count, "lr": lr}
            if use_val:
                network.eval()
                with torch.no_grad():
                    record["val_loss"] = batch_loss(network, val).item()
            _check_finite(record, network, config)
            if use_val:
                if stopper.update(record["val_loss"], step=epoch):
                    best = _clone(network.state_dict())
                record["best"] = stopper.best_step == epoch
            else:
                best = _clone(network.state_dict())
            metrics.append(record)
            bar.update(1)
            bar.set_postfix(loss=f"{record['train_loss']:.4f}",
                            **({"val": f"{record['val_loss']:.4f}"} if use_val else {}))
            stop = use_val and stopper.should_stop
            if stop or epoch == config.epochs - 1 or (epoch + 1) % config.checkpoint_every == 0:
                save(epoch, member_done=stop or epoch == config.epochs - 1)
            if callback is not None:
                callback(record)
            if stop:
                break
    finally:
        bar.close()
    return best
