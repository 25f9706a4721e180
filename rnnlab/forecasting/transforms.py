"""Invertible transforms between the user's numbers and what the network sees.

Two kinds, applied in this order and undone in the reverse one:

1. Global, fitted on the training range only (NumPy, saved to scaler.json):
   log (natural log; shifted when the training range holds values <= 0), then a scaler per column
   (standard: mean/std, minmax: min/range, robust: median/IQR as in scikit-learn's RobustScaler).
2. Per window (torch, nothing to save): window normalisation (subtract the window's last value or mean,
   optionally divide by its standard deviation; the "mean scaling" of DeepAR, Salinas et al. 2020) and
   differencing at any lags (1 for a trend, the season length for seasonality).

Differencing is undone *inside* the model, before the loss: the head emits increments, `integrate`
turns them back into levels, and the loss (and so every quantile) is measured on the levels. Every
remaining inverse is monotone per step, so quantiles pass through it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rnnlab.errors import DataError, ModelDirError


@dataclass
class Scaler:
    """Per-column affine scaler: z = (x - center) / scale."""

    kind: str = "robust"
    center: np.ndarray | None = None  # [D]
    scale: np.ndarray | None = None  # [D]

    def fit(self, x: np.ndarray) -> Scaler:
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "standard":
            center, scale = x.mean(axis=0), x.std(axis=0)
        elif self.kind == "minmax":
            center, scale = x.min(axis=0), x.max(axis=0) - x.min(axis=0)
        elif self.kind == "robust":
            q25, q50, q75 = np.percentile(x, [25, 50, 75], axis=0)
            center, scale = q50, q75 - q25
            flat = scale <= 1e-12  # a flat middle half: fall back to the standard deviation
            scale = np.where(flat, x.std(axis=0), scale)
        else:
            center, scale = np.zeros(x.shape[1]), np.ones(x.shape[1])
        self.center = np.asarray(center, dtype=np.float64)
        self.scale = np.where(np.asarray(scale) > 1e-12, scale, 1.0).astype(np.float64)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (x - self.center) / self.scale

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return z * self.scale + self.center

    def to_dict(self) -> dict:
        return {"kind": self.kind, "center": self.center.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> Scaler:
        try:
            return cls(kind=data["kind"], center=np.asarray(data["center"], dtype=np.float64),
                       scale=np.asarray(data["scale"], dtype=np.float64))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelDirError(f"scaler.json is malformed ({exc})") from None


@dataclass
class TargetTransform:
    """log (optional) then a scaler, fitted on the training range; `inverse` undoes both."""

    log: bool = False
    scaler: Scaler | None = None
    shift: np.ndarray | None = None  # [D] added before the log so the training range is >= 1 where needed
    columns: tuple[str, ...] = ()

    def fit(self, x: np.ndarray, kind: str) -> TargetTransform:
        x = np.asarray(x, dtype=np.float64)
        if self.log:
            low = x.min(axis=0)
            self.shift = np.where(low > 0, 0.0, 1.0 - low)
        self.scaler = Scaler(kind).fit(self._log(x))
        return self

    def _log(self, x: np.ndarray) -> np.ndarray:
        if not self.log:
            return x
        shifted = x + self.shift
        if (shifted <= 0).any():
            row, col = np.argwhere(shifted <= 0)[0]
            name = self.columns[col] if col < len(self.columns) else f"column {col}"
            raise DataError(f"--log: {name!r} holds {x[row, col]:g} at step {row}, below the range the "
                            "log transform was fitted on")
        return np.log(shifted)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return self.scaler.transform(self._log(np.asarray(x, dtype=np.float64)))

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Works on any array whose last axis is the D columns (so on [H, D] and on [..., H, D])."""
        x = self.scaler.inverse(z)
        if self.log:
            x = np.exp(np.clip(x, -700, 700)) - self.shift
        return x

    def to_dict(self) -> dict:
        return {"log": self.log, "shift": None if self.shift is None else self.shift.tolist(),
                "scaler": self.scaler.to_dict(), "columns": list(self.columns)}

    @classmethod
    def from_dict(cls, data: dict) -> TargetTransform:
        try:
            shift = None if data["shift"] is None else np.asarray(data["shift"], dtype=np.float64)
            return cls(log=bool(data["log"]), scaler=Scaler.from_dict(data["scaler"]), shift=shift,
                       columns=tuple(data.get("columns", ())))
        except (KeyError, TypeError) as exc:
            raise ModelDirError(f"scaler.json is malformed ({exc})") from None


# -- per-window transforms (torch) ----------------------------------------------------------------
def window_stats(history: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(loc, scale), each [B, 1, D], from a history window [B, L, D]."""
    ones = torch.ones_like(history[:, -1:, :])
    if mode == "none":
        return torch.zeros_like(ones), ones
    if mode == "last":
        return history[:, -1:, :], ones
    loc = history.mean(dim=1, keepdim=True)
    if mode == "mean":
        return loc, ones
    # "standard": the floor keeps a flat window from blowing its (global-scaled) values up.
    return loc, history.std(dim=1, keepdim=True, unbiased=False).clamp_min(0.05)


def difference(x: torch.Tensor, lags: tuple[int, ...]) -> torch.Tensor:
    """[B, L, D] -> [B, L - sum(lags), D]: x_t - x_{t-lag} for each lag in turn."""
    for lag in lags:
        x = x[:, lag:] - x[:, :-lag]
    return x


def integrate(history: torch.Tensor, increments: torch.Tensor, lags: tuple[int, ...]) -> torch.Tensor:
    """Undo `difference`: levels [B, H, D, K] from the (level) history [B, L, D] and increments [B, H, D, K].

    For one lag d the future is  y[t+k] = y[t+k-d] + z[t+k],  with y[t+k-d] taken from the history while
    k < d and from the forecast itself after that. Vectorised: pad H up to a multiple of d, fold the
    steps into (cycles, d), cumulate over cycles, add the last d known levels.
    """
    if not lags:
        return increments
    levels_below = [history]
    for lag in lags[:-1]:
        levels_below.append(difference(levels_below[-1], (lag,)))
    out = increments
    for lag, known in zip(reversed(lags), reversed(levels_below)):
        batch, horizon = out.shape[0], out.shape[1]
        cycles = -(-horizon // lag)
        padded = torch.nn.functional.pad(out, (0, 0, 0, 0, 0, cycles * lag - horizon))
        folded = padded.reshape(batch, cycles, lag, *out.shape[2:]).cumsum(dim=1)
        base = known[:, -lag:, :].unsqueeze(1).unsqueeze(-1)  # [B, 1, lag, D, 1]
        out = (folded + base).reshape(batch, cycles * lag, *out.shape[2:])[:, :horizon]
    return out
