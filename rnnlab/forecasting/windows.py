"""Lookback/horizon windows cut from a (transformed) series, as tensors.

One window per forecast origin t (the first step to predict), for t = L .. T - H:

    time   0 ........ t-L ....... t-1 | t ....... t+H-1 ...... T-1
    history             [ L steps ]   | [ H steps ]  target
    past covariates     [ L steps ]   |
    future covariates   [ L steps ]   | [ H steps ]  (known ahead, so the head sees them too)
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

    def __len__(self) -> int:
        return self.history.shape[0]

    def subset(self, rows: torch.Tensor | slice) -> Windows:
        return Windows(self.history[rows], self.past[rows], self.future_in[rows], self.future_out[rows],
                       self.target[rows])


def _cut(array: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """[len(starts), length, C] slices array[s : s + length] for every s (a strided view, then a copy)."""
    if length == 0 or array.shape[1] == 0:
        return np.zeros((len(starts), length, array.shape[1]))
    view = sliding_window_view(array, length, axis=0)  # [T - length + 1, C, length]
    return np.ascontiguousarray(view[starts].transpose(0, 2, 1))


def make_windows(values: np.ndarray, past: np.ndarray, future: np.ndarray, lookback: int, horizon: int,
                 origins: np.ndarray | None = None) -> Windows:
    """Windows for `origins` (default: every t with a full history and a full target inside `values`).

    values [T, D], past [T, P], future [T + F, C] (F >= 0 known steps past the end).
    """
    if origins is None:
        origins = np.arange(lookback, len(values) - horizon + 1)
    origins = np.asarray(origins, dtype=np.int64)
    hist = _cut(values, origins - lookback, lookback)
    target = _cut(values, origins, horizon) if horizon and len(values) >= horizon else \
        np.zeros((len(origins), 0, values.shape[1]))
    as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    return Windows(history=as_tensor(hist), past=as_tensor(_cut(past, origins - lookback, lookback)),
                   future_in=as_tensor(_cut(future, origins - lookback, lookback)),
                   future_out=as_tensor(_cut(future, origins, horizon)), target=as_tensor(target))


def last_window(values: np.ndarray, past: np.ndarray, future: np.ndarray, lookback: int,
                horizon: int) -> Windows:
    """The single window whose origin is just past the end of `values` (the forecast to make)."""
    end = len(values)
    hist = values[None, end - lookback:end]
    as_tensor = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    return Windows(history=as_tensor(hist), past=as_tensor(past[None, end - lookback:end]),
                   future_in=as_tensor(future[None, end - lookback:end]),
                   future_out=as_tensor(future[None, end:end + horizon]),
                   target=torch.zeros(1, 0, values.shape[1]))
