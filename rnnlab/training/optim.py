"""Optimiser and learning-rate schedule from a TrainConfig.

The optimisers are torch's update rules (`torch.optim.adam.adam`, `sgd`, `rmsprop`: its own functional
kernels, so the numbers are torch.optim.AdamW's to the bit) in a small shell of our own instead of
`torch.optim.Optimizer`: every method of that class (`add_param_group`, which its `__init__` calls,
`zero_grad`, `step`, `state_dict`) imports `torch._dynamo` on first use, and with it sympy and parts of
inductor: about 70 MB resident for the whole of a run that never compiles anything. `state_dict()` keeps
torch's layout and hyperparameter names, so a training state written by either loads into the other.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim.adam import adam
from torch.optim.rmsprop import rmsprop
from torch.optim.sgd import sgd

from rnnlab.config import TrainConfig


def make_optimizer(params, config: TrainConfig) -> Optimizer:
    params = list(params)
    # Weight decay on matrices only: decaying biases and embeddings' norms buys nothing (as in nanoGPT).
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "adamw":
        return AdamW(groups, lr=config.lr, foreach=True)
    if config.optimizer == "adam":
        return Adam(groups, lr=config.lr, foreach=True)
    if config.optimizer == "rmsprop":
        return RMSprop(groups, lr=config.lr, foreach=True)
    return SGD(groups, lr=config.lr, momentum=0.9, foreach=True)


def _scalar_dtype() -> torch.dtype:
    # The dtype torch.optim gives its `step` counters (float32 unless the default dtype is float64).
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


class Optimizer:
    """What the loops use of torch.optim.Optimizer: `param_groups` (dicts whose "lr" the schedule sets),
    `zero_grad`, `step`, `state_dict` and `load_state_dict` in torch's layout. A subclass names its
    hyperparameters (torch's defaults) and calls torch's functional update in `_update`."""

    DEFAULTS: dict[str, Any] = {}

    def __init__(self, groups, **hyperparameters):
        if isinstance(groups, torch.Tensor):
            raise TypeError("params must be an iterable of tensors or of parameter-group dicts")
        groups = list(groups)
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        defaults = {**self.DEFAULTS, **hyperparameters}
        self.param_groups: list[dict[str, Any]] = [{**defaults, **g, "params": list(g["params"])} for g in groups]
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_()
                    p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._update(group, params, [p.grad for p in params])

    def _update(self, group: dict[str, Any], params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """{"state": {index: {name: tensor}}, "param_groups": [{hyperparameters..., "params": [index]}]},
        parameters numbered in group order, as torch.optim numbers them."""
        index = {id(p): i for i, p in enumerate(p for g in self.param_groups for p in g["params"])}
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]}
                  for g in self.param_groups]
        return {"state": {index[id(p)]: state for p, state in self.state.items()}, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups) or any(
                len(s["params"]) != len(g["params"]) for s, g in zip(saved, self.param_groups)):
            raise ValueError("the saved optimiser state has other parameter groups than this optimiser")
        params = {i: p for s, g in zip(saved, self.param_groups) for i, p in zip(s["params"], g["params"])}
        # As torch.optim casts: moments follow their parameter's dtype and device, the step stays put.
        self.state = {params[int(i)]: {k: v if k == "step" else _like(params[int(i)], v) for k, v in s.items()}
                      for i, s in state_dict["state"].items()}
        self.param_groups = [{**s, "params": g["params"]} for s, g in zip(saved, self.param_groups)]


def _like(param: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    if param.is_floating_point():
        return value.to(dtype=param.dtype, device=param.device)
    return value.to(device=param.device)


def _zeros(p: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(p, memory_format=torch.preserve_format)


def _has_complex(params: list[torch.Tensor]) -> bool:
    return any(torch.is_complex(p) for p in params)


class Adam(Optimizer):
    """torch.optim.Adam's update (Kingma & Ba 2015), without decoupled weight decay by default."""

    DEFAULTS = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "amsgrad": False,
                "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
                "fused": None, "decoupled_weight_decay": False}

    def _update(self, group, params, grads) -> None:
        states = [self.state.get(p) or self._new_state(p, group) for p in params]
        beta1, beta2 = group["betas"]
        adam(params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
             [s["max_exp_avg_sq"] for s in states] if group["amsgrad"] else [], [s["step"] for s in states],
             foreach=group["foreach"], capturable=group["capturable"], differentiable=group["differentiable"],
             fused=group["fused"], has_complex=_has_complex(params),
             decoupled_weight_decay=group["decoupled_weight_decay"], amsgrad=group["amsgrad"], beta1=beta1,
             beta2=beta2, lr=group["lr"], weight_decay=group["weight_decay"], eps=group["eps"],
             maximize=group["maximize"])

    def _new_state(self, p: torch.Tensor, group) -> dict[str, torch.Tensor]:
        state = {"step": torch.tensor(0.0, dtype=_scalar_dtype()), "exp_avg": _zeros(p), "exp_avg_sq": _zeros(p)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = _zeros(p)
        self.state[p] = state
        return state


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay (Loshchilov & Hutter 2019)."""

    DEFAULTS = {**Adam.DEFAULTS, "weight_decay": 1e-2, "decoupled_weight_decay": True}


class RMSprop(Optimizer):
    """torch.optim.RMSprop's update."""

    DEFAULTS = {"lr": 1e-2, "momentum": 0, "alpha": 0.99, "eps": 1e-8, "centered": False, "weight_decay": 0,
                "capturable": False, "foreach": None, "maximize": False, "differentiable": False}

    def _update(self, group, params, grads) -> None:
        states = [self.state.get(p) or self._new_state(p, group) for p in params]
        rmsprop(params, grads, [s["square_avg"] for s in states],
                [s["grad_avg"] for s in states] if group["centered"] else [],
                [s["momentum_buffer"] for s in states] if group["momentum"] > 0 else [],
                [s["step"] for s in states], foreach=group["foreach"], maximize=group["maximize"],
                differentiable=group["differentiable"], capturable=group["capturable"],
                has_complex=_has_complex(params), lr=group["lr"], alpha=group["alpha"], eps=group["eps"],
                weight_decay=group["weight_decay"], momentum=group["momentum"], centered=group["centered"])

    def _new_state(self, p: torch.Tensor, group) -> dict[str, torch.Tensor]:
        state = {"step": torch.zeros((), dtype=_scalar_dtype()), "square_avg": _zeros(p)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = _zeros(p)
        if group["centered"]:
            state["grad_avg"] = _zeros(p)
        self.state[p] = state
        return state


class SGD(Optimizer):
    """torch.optim.SGD's update; the momentum buffer is created by the first step, as torch does."""

    DEFAULTS = {"lr": 1e-3, "momentum": 0, "dampening": 0, "weight_decay": 0, "nesterov": False,
                "maximize": False, "foreach": None, "differentiable": False, "fused": None}

    def _update(self, group, params, grads) -> None:
        buffers = [self.state.get(p, {}).get("momentum_buffer") for p in params]
        sgd(params, grads, buffers, has_sparse_grad=any(g.is_sparse for g in grads), foreach=group["foreach"],
            fused=group["fused"], weight_decay=group["weight_decay"], momentum=group["momentum"],
            lr=group["lr"], dampening=group["dampening"], nesterov=group["nesterov"],
            maximize=group["maximize"])
        if group["momentum"] != 0:
            for p, buffer in zip(params, buffers):
                self.state.setdefault(p, {})["momentum_buffer"] = buffer


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

    def apply(self, optimizer: Optimizer, step: int, time_progress: float | None = None) -> float:
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
