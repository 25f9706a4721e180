"""The recurrent forecasting network: an encoder over the lookback window and a direct head.

    inputs [B, L, F] --LSTM/GRU/RNN/minGRU/minLSTM--> encoded [B, L, E] --last step--> summary [B, E]
    summary (+ known-future covariates of the H steps, flattened [B, H*C]) --Linear--> [B, H, D, K]

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
                 highway: int = 0, location: tuple[bool, ...] | None = None):
        super().__init__()
        self.shape = (horizon, target_dim, outputs)
        # The one builder of every recurrent stack (models/cells.py): torch's fused LSTM/GRU/RNN, or a
        # MinRNN of minGRU/minLSTM blocks; each maps [B, L, F] to ([B, L, E], state).
        self.encoder = make_recurrent(cell, input_size, hidden_size, num_layers=layers, dropout=dropout)
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
        encoded, _ = self.encoder(inputs)  # [B, L, E]
        summary = self.dropout(encoded[:, -1])  # [B, E]
        if future.shape[-1]:
            summary = torch.cat([summary, future.flatten(1)], dim=1)  # [B, E + H*C]
        out = self.head(summary).view(inputs.shape[0], *self.shape)  # [B, H, D, K]
        if self.highway is not None:
            recent = inputs[:, -self.highway_steps:, : self.shape[1]]  # [B, highway, D]
            shift = self.highway(recent.flatten(1)).view(inputs.shape[0], *self.shape[:2], 1)  # [B, H, D, 1]
            out = out + shift * self.location
        return out
