"""Ensemble training of the recurrent forecaster: one run of the shared loop (training/loop.py) per member.

Member m is seeded with seed + m (its initial weights and its window order), then trained by `loop.train`
with the forecaster's batch loss, one validation per epoch on the windows at the end of the training range,
early stopping and the best weights kept: the same optimiser, schedule, clipping, checkpoints and exact
resume as the language model's. With a model directory each member is a run directory of its own:

    model_dir/member-{m}/training_state.safetensors   the loop's checkpoint (every `checkpoint_every` epochs)
    model_dir/member-{m}/model.safetensors            its best weights
    model_dir/member-{m}/metrics.jsonl                one line per epoch

A resumed fit loads the members that finished, resumes the one that was training and starts the others.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from rnnlab import _io
from rnnlab.config import TrainConfig
from rnnlab.errors import ModelDirError, TrainingDivergedError
from rnnlab.forecasting.config import ForecastConfig
from rnnlab.forecasting.windows import Windows
from rnnlab.training import checkpoint as ckpt
from rnnlab.training import loop, modeldir
from rnnlab.training.seeding import seed_everything

MEMBER_FILES = (ckpt.TRAINING_STATE, ckpt.WEIGHTS, ckpt.METRICS)  # what the loop writes in a member's folder

WindowLoss = Callable[[nn.Module, Windows], torch.Tensor]
EpochCallback = Callable[[dict], None]


def member_dir(directory: Path, member: int) -> Path:
    return Path(directory) / f"member-{member}"


def member_dirs(directory: Path) -> list[Path]:
    """The member folders a fit wrote in `directory`."""
    return sorted(p for p in Path(directory).glob("member-*") if p.is_dir() and p.name[7:].isdigit())


def remove_members(directory: Path) -> None:
    """Delete what fits wrote in `directory`'s member folders (only those files), and each folder left empty."""
    for folder in member_dirs(directory):
        modeldir.remove_files(folder, MEMBER_FILES)
        if not modeldir.entries(folder):
            folder.rmdir()


def can_resume(directory: Path) -> bool:
    return any((folder / ckpt.TRAINING_STATE).is_file() for folder in member_dirs(directory))


def train_config(config: ForecastConfig, steps_per_epoch: int) -> TrainConfig:
    """The core TrainConfig the shared loop reads: the forecaster's epochs and checkpoint period (in epochs)
    become the loop's, an evaluation at the end of every epoch."""
    total = config.epochs * steps_per_epoch
    return TrainConfig(epochs=config.epochs, lr=config.lr, weight_decay=config.weight_decay, clip=config.clip,
                       optimizer="adamw", schedule="cosine", warmup_steps=min(50, total // 10),
                       patience=config.patience, seed=config.seed, batch_size=config.batch_size,
                       checkpoint_every=config.checkpoint_every * steps_per_epoch, sample_every=0,
                       device=config.device)


@dataclass
class WindowBatch:
    """One batch of windows, as the loop sees a batch (targets to count, no carried state)."""

    windows: Windows
    carries_state = False

    @property
    def targets(self) -> torch.Tensor:
        return self.windows.target


class WindowBatches:
    """The loop's batches: each epoch one permutation of the windows, split into batches of `batch_size`.

    The permutations come from one generator seeded with `seed`, epoch after epoch, so epoch e's order
    depends only on (seed, e): a resumed run's first epoch replays the draws before it and reads the same
    windows as an uninterrupted run."""

    def __init__(self, windows: Windows, batch_size: int, seed: int):
        self.windows, self.batch_size, self.seed = windows, batch_size, seed
        self._generator, self._next_epoch = torch.Generator().manual_seed(seed), 0

    def __len__(self) -> int:
        return -(-len(self.windows) // self.batch_size)

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[WindowBatch]:
        if epoch != self._next_epoch:  # not the epoch after the last one asked for: replay from the seed
            self._generator.manual_seed(self.seed)
            for _ in range(epoch):
                torch.randperm(len(self.windows), generator=self._generator)
        order = torch.randperm(len(self.windows), generator=self._generator)
        self._next_epoch = epoch + 1
        for rows in order.split(self.batch_size)[start_step:]:
            yield WindowBatch(self.windows.subset(rows))


def fit_members(make_network: Callable[[], nn.Module], window_loss: WindowLoss, train: Windows,
                val: Windows | None, config: ForecastConfig, *, directory: str | Path | None = None,
                resume: bool = False, progress: bool = False,
                callback: EpochCallback | None = None) -> tuple[list[nn.Module], list[dict]]:
    """Train `config.ensemble` networks; returns them (best weights loaded, eval mode) and the metrics of
    every epoch of every member ({"member": m, ...the loop's record})."""
    networks, metrics = [], []
    for member in range(config.ensemble):
        folder = member_dir(directory, member) if directory is not None else None
        seed_everything(config.seed + member)
        network = make_network()
        if folder is not None and _finished(folder):
            ckpt.load_weights(folder / ckpt.WEIGHTS, network)
            history = ckpt.read_metrics(folder)
        else:
            history = _train_member(network, window_loss, train, val, config, member, folder,
                                    resume and folder is not None and (folder / ckpt.TRAINING_STATE).is_file(),
                                    progress, callback)
        metrics.extend({"member": member, **record} for record in history)
        networks.append(network.eval())
    return networks, metrics


def _finished(folder: Path) -> bool:
    """True when the member in `folder` ran to its end (its checkpoint says so and its weights are there).
    An unreadable checkpoint is not finished: resuming it gives the loop's one-line error."""
    path = folder / ckpt.TRAINING_STATE
    if not path.is_file() or not (folder / ckpt.WEIGHTS).is_file():
        return False
    try:
        state = json.loads(_io.load_tensor_metadata(path).get("state") or "{}")
    except (ModelDirError, json.JSONDecodeError):
        return False
    return isinstance(state, dict) and bool(state.get("finished"))


def _train_member(network: nn.Module, window_loss: WindowLoss, train: Windows, val: Windows | None,
                  config: ForecastConfig, member: int, folder: Path | None, resume: bool, progress: bool,
                  callback: EpochCallback | None) -> list[dict]:
    batches = WindowBatches(train, config.batch_size, config.seed + member)
    device = next(network.parameters()).device

    def loss_fn(net, batch: WindowBatch, _carry, _device, _config) -> loop.BatchLoss:
        loss = window_loss(net, batch.windows)
        return loop.BatchLoss(loss, None, None, loss)

    def evaluate() -> dict:
        network.eval()
        with torch.no_grad():
            loss = window_loss(network, val).item()
        network.train()
        return {"loss": loss}

    def on_eval(record: dict) -> None:
        if callback is not None:
            callback({"member": member, **record})

    if folder is not None:
        _io.make_dir(folder)
    network.train()
    try:
        result = loop.train(network, batches, evaluate if val is not None and len(val) else None,
                            train_config(config, len(batches)), folder, device, resume=resume,
                            hooks=loop.Hooks(on_eval=on_eval, progress=progress), loss_fn=loss_fn)
    except TrainingDivergedError as exc:
        which = f" (ensemble member {member + 1})" if config.ensemble > 1 else ""
        clip = ", turn gradient clipping on (--clip 1)" if config.clip == 0 else ""
        raise TrainingDivergedError(
            f"{exc.message.split(';')[0]}{which}; lower --lr (now {config.lr:g}){clip}, or scale the data "
            f"(--scaler, --log, --window-norm)") from None
    if folder is not None:
        ckpt.load_weights(folder / ckpt.WEIGHTS, network)
    return result.history
