"""Optimiser and learning-rate schedule from a TrainConfig."""

from __future__ import annotations

import math

import torch

from rnnlab.config import TrainConfig


def make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    params = list(params)
    # Weight decay on matrices only: decaying biases and embeddings' norms buys nothing (as in nanoGPT).
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, foreach=True)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr, foreach=True)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=config.lr, foreach=True)
    return torch.optim.SGD(groups, lr=config.lr, momentum=0.9, foreach=True)


class LRSchedule:
    """Linear warm-up, then cosine decay to 10% of the peak over `total_steps`, or reduce-on-plateau.

    The schedule is a pure function of (step, plateau state), so it resumes exactly from a checkpoint.
    """

    def __init__(self, config: TrainConfig, total_steps: int | None):
        self.config = config
        self.total_steps = total_steps
        self.plateau_scale = 1.0
        self.plateau_best = float("inf")
        self.plateau_bad = 0

    def factor(self, step: int, time_progress: float | None = None) -> float:
        """LR multiplier at `step`. Without a step budget (a --max-time run) cosine follows the clock."""
        warm = self.config.warmup_steps
        if warm and step < warm:
            return (step + 1) / warm
        if self.config.schedule == "cosine" and (self.total_steps or time_progress is not None):
            if self.total_steps:
                progress = (step - warm) / max(1, self.total_steps - warm)
            else:
                progress = time_progress
            progress = min(1.0, max(0.0, progress))
            return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))
        if self.config.schedule == "plateau":
            return self.plateau_scale
        return 1.0

    def apply(self, optimizer: torch.optim.Optimizer, step: int, time_progress: float | None = None) -> float:
        lr = self.config.lr * self.factor(step, time_progress)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def observe_validation(self, loss: float, patience: int = 1) -> None:
        """Plateau schedule: halve the rate after `patience` evaluations without improvement."""
        if self.config.schedule != "plateau":
            return
        if loss < self.plateau_best - 1e-4:
            self.plateau_best, self.plateau_bad = loss, 0
        else:
            self.plateau_bad += 1
            if self.plateau_bad >= patience:
                self.plateau_scale *= 0.5
                self.plateau_bad = 0

    def state_dict(self) -> dict:
        return {"plateau_scale": self.plateau_scale, "plateau_best": self.plateau_best,
                "plateau_bad": self.plateau_bad}

    def load_state_dict(self, state: dict) -> None:
        self.plateau_scale = float(state["plateau_scale"])
        self.plateau_best = float(state["plateau_best"])
        self.plateau_bad = int(state["plateau_bad"])
        # total_steps is not restored: it follows the resumed run's own budget (--epochs, --max-steps).
