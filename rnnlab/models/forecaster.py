"""The recurrent forecasting network: an encoder over the lookback window and a direct head.

    inputs [B, L, F] --LSTM/GRU/RNN/minGRU/minLSTM--> encoded [B, L, E] --last step--> summary [B, E]
    summary (+ known-future covariates of the H steps, flattened [B, H*C]) --Linear--> [B, H, D, K]

With `patch` P > 1 the encoder reads the window P steps at a time, [B, L, F] -> [B, L // P, P * F] (the
oldest L mod P steps dropped), as SegRNN does (Lin et al. 2023, "Segment recurrent neural network for
long-term time series forecasting"): a week of hourly values is 7 recurrent steps of a day each instead of
168, so the network can be many times wider for the same CPU time, and the recurrence runs over days.

K is what the head emits per step and column: one value per quantile (quantile head) or a location and a
raw scale (Gaussian head). With H = 1 the same network is the one-step model of the recursive mode.
The network computes these numbers and nothing else: losses, transforms and sampling live outside it.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnlab.models.cells import make_recurrent


class ForecastNetwork(nn.Module):
    def __init__(self, input_size: int, target_dim: int, horizon: int, outputs: int, future_size: int = 0,
                 cell: str = "lstm", hidden_size: int = 32, layers: int = 1, dropout: float = 0.0,
                 highway: int = 0, location: tuple[bool, ...] | None = None, patch: int = 1):
        super().__init__()
        self.shape = (horizon, target_dim, outputs)
        self.patch = patch
        # The one builder of every recurrent stack (models/cells.py): torch's fused LSTM/GRU/RNN, or a
        # MinRNN of minGRU/minLSTM blocks; each maps [B, L, F] to ([B, L, E], state).
        self.encoder = make_recurrent(cell, input_size * patch, hidden_size, num_layers=layers, dropout=dropout)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size + horizon * future_size, horizon * target_dim * outputs)
        # Optional linear "highway" from the last `highway` target inputs straight to the outputs: the
        # autoregressive component of LSTNet (Lai et al. 2018), so the recurrent part models what a
        # linear autoregression cannot. It moves the location outputs (`location`: which of the K are
        # locations, e.g. every quantile, or only the Gaussian mean) by one shared amount per step.
        self.highway = nn.Linear(highway * target_dim, horizon * target_dim) if highway else None
        self.highway_steps = highway
        mask = torch.tensor(location if location is not None else (True,) * outputs, dtype=torch.float32)
        self.register_buffer("location", mask, persistent=False)

    def forward(self, inputs: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """inputs [B, L, F] (the D target channels first), future [B, H, C] (C may be 0) -> [B, H, D, K]."""
        encoded, _ = self.encoder(self._patches(inputs))  # [B, L // P, E]
        summary = self.dropout(encoded[:, -1])  # [B, E]
        if future.shape[-1]:
            summary = torch.cat([summary, future.flatten(1)], dim=1)  # [B, E + H*C]
        out = self.head(summary).view(inputs.shape[0], *self.shape)  # [B, H, D, K]
        if self.highway is not None:
            recent = inputs[:, -self.highway_steps:, : self.shape[1]]  # [B, highway, D]
            shift = self.highway(recent.flatten(1)).view(inputs.shape[0], *self.shape[:2], 1)  # [B, H, D, 1]
            out = out + shift * self.location
        return out

    def _patches(self, inputs: torch.Tensor) -> torch.Tensor:
        """[B, L, F] -> [B, L // P, P * F]: each step the P consecutive steps' features, oldest first."""
        if self.patch == 1:
            return inputs
        B, L, F = inputs.shape
        if L < self.patch:
            raise ValueError(f"a window of {L} steps is shorter than one patch of {self.patch}")
        steps = L // self.patch
        return inputs[:, L - steps * self.patch:].reshape(B, steps, self.patch * F)
