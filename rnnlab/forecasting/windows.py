"""Lookback/horizon windows cut from a (transformed) series, as tensors.

One window per forecast origin t (the first step to predict), for t = L .. T - H:

    time   0 ........ t-L ....... t-1 | t ....... t+H-1 ...... T-1
    history             [ L steps ]   | [ H steps ]  target
    past covariates     [ L steps ]   |
    future covariates   [ L steps ]   | [ H steps ]  (known ahead, so the head sees them too)
    season profile      [ L steps ]   | [ H steps ]  (optional: the mean of the K values one, two, ...
                                                      seasons before each step, all observed before t)

The season profile is how a season longer than the window reaches the network: instead of copying a
whole weekly season of 336 half-hours into the window, every step carries the average of the same phase
in the K seasons before it, a summary that costs one input channel (the seasonality term of ES-RNN,
Smyl 2020, kept as an input rather than divided out).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view


@dataclass
class Windows:
    history: torch.Tensor  # [N, L, D]
    past: torch.Tensor  # [N, L, P]
    future_in: torch.Tensor  # [N, L, C]
    future_out: torch.Tensor  # [N, H, C]
    target: torch.Tensor  # [N, H, D] (empty H when predicting)
    profile: torch.Tensor | None = None  # [N, L + H, D] season profile, or None

    def __len__(self) -> int:
        return self.history.shape[0]

    def subset(self, rows: torch.Tensor | slice) -> Windows:
        return Windows(self.history[rows], self.past[rows], self.future_in[rows], self.future_out[rows],
                       self.target[rows], None if self.profile is None else self.profile[rows])

    @staticmethod
    def concat(parts: list[Windows]) -> Windows:
        """Windows of many series as one set (their lengths L and H must agree)."""
        cat = lambda name: torch.cat([getattr(w, name) for w in parts])  # noqa: E731
        profile = cat("profile") if parts[0].profile is not None else None
        return Windows(cat("history"), cat("past"), cat("future_in"), cat("future_out"), cat("target"), profile)

    def to(self, device: torch.device) -> Windows:
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Windows(*(move(t) for t in (self.history, self.past, self.future_in, self.future_out,
                                           self.target, self.profile)))


def profile_offsets(lookback: int, horizon: int, season: int, count: int) -> np.ndarray:
    """[L + H, K] offsets from the origin t of the K same-phase values averaged for each window step.

    Step j of the window sits at time u = t - L + j; it averages u - k*m for k = k0 .. k0 + K - 1, where
    k0 = max(1, ceil((u - t + 1) / m)) is the first season back that is observed before the origin (so a
    horizon longer than the season reaches two seasons back, and nothing ever looks past t - 1).
    """
    u = np.arange(lookback + horizon) - lookback  # u - t
    k0 = np.maximum(1, -(-(u + 1) // season))
    return u[:, None] - (k0[:, None] + np.arange(count)[None, :]) * season


def profile_reach(lookback: int, horizon: int, season: int, count: int) -> int:
    """How far before the origin the profile reads: origins must be at least this far into the series."""
    return int(-profile_offsets(lookback, horizon, season, count).min())


def season_profile(values: np.ndarray, origins: np.ndarray, lookback: int, horizon: int, season: int,
                   count: int) -> np.ndarray:
    """[N, L + H, D] the season profile of each window (see the module docstring), from values [T, D]."""
    index = np.asarray(origins, dtype=np.int64)[:, None, None] + profile_offsets(lookback, horizon, season, count)
    return values[index].mean(axis=2)  # [N, L + H, K, D] -> [N, L + H, D]


def _cut(array: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """[len(starts), length, C] slices array[s : s + length] for every s (a strided view, then a copy)."""
    if length == 0 or array.shape[1] == 0:
        return np.zeros((len(starts), length, array.shape[1]))
    view = sliding_window_view(array, length, axis=0)  # [T - length + 1, C, length]
    return np.ascontiguousarray(view[starts].transpose(0, 2, 1))


def make_windows(values: np.ndarray, past: np.ndarray, future: np.ndarray, lookback: int, horizon: int,
                 origins: np.ndarray | None = None, profile: tuple[int, int] | None = None) -> Windows:
    """Windows for `origins` (default: every t with a full history and a full target inside `values`).

    values [T, D], past [T, P], future [T + F, C] (F >= 0 known steps past the end); `profile` =
    (season, K) adds the season profile (and the default origins then start where it can be read).
    """
    if origins is None:
        first = max(lookback, profile_reach(lookback, horizon, *profile)) if profile else lookback
        origins = np.arange(first, len(values) - horizon + 1)
    origins = np.asarray(origins, dtype=np.int64)
    hist = _cut(values, origins - lookback, lookback)
    target = _cut(values, origins, horizon) if horizon and len(values) >= horizon else \
        np.zeros((len(origins), 0, values.shape[1]))
    as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    return Windows(history=as_tensor(hist), past=as_tensor(_cut(past, origins - lookback, lookback)),
                   future_in=as_tensor(_cut(future, origins - lookback, lookback)),
                   future_out=as_tensor(_cut(future, origins, horizon)), target=as_tensor(target),
                   profile=as_tensor(season_profile(values, origins, lookback, horizon, *profile)) if profile
                   else None)


def last_window(values: np.ndarray, past: np.ndarray, future: np.ndarray, lookback: int,
                horizon: int, profile: tuple[int, int] | None = None) -> Windows:
    """The single window whose origin is just past the end of `values` (the forecast to make)."""
    end = len(values)
    prof = None
    if profile:
        prof = torch.as_tensor(season_profile(values, np.array([end]), lookback, horizon, *profile),
                               dtype=torch.float32)
    hist = values[None, end - lookback:end]
    as_tensor = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    return Windows(history=as_tensor(hist), past=as_tensor(past[None, end - lookback:end]),
                   future_in=as_tensor(future[None, end - lookback:end]),
                   future_out=as_tensor(future[None, end:end + horizon]),
                   target=torch.zeros(1, 0, values.shape[1]), profile=prof)
