"""Early stopping on a validation loss: remember the best value, count evaluations without improvement."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EarlyStopping:
    """`update(loss)` returns True when `loss` is a new best (by more than `min_delta`).

    `should_stop` turns True once `patience` evaluations in a row brought no improvement;
    patience None never stops. The state is plain numbers so it travels in a checkpoint.
    """

    patience: int | None = 3
    min_delta: float = 0.0
    best: float = float("inf")
    bad_evals: int = 0
    best_step: int = -1

    def update(self, loss: float, step: int = -1, counts: bool = True) -> bool:
        """`counts=False` (the extra evaluation at the end of a budget) may set a new best but never
        moves the patience counter, so a run cut by its budget and resumed decides as an uncut one."""
        if loss < self.best - self.min_delta:
            self.best = loss
            self.best_step = step
            if counts:
                self.bad_evals = 0
            return True
        if counts:
            self.bad_evals += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad_evals >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_evals": self.bad_evals, "best_step": self.best_step}

    def load_state_dict(self, state: dict) -> None:
        self.best = float(state["best"])
        self.bad_evals = int(state["bad_evals"])
        self.best_step = int(state["best_step"])
