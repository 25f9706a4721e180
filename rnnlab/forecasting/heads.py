"""Probabilistic heads: what the network's K outputs per step mean, their loss, and their quantiles.

quantile: K = number of quantiles; trained with the pinball loss (Koenker & Bassett 1978), as in MQ-RNN
          (Wen et al. 2017). Crossing quantiles are sorted at prediction time (Chernozhukov et al. 2010).
gaussian: K = 2, a location and a raw scale (softplus + floor); trained with the negative log-likelihood,
          as in DeepAR (Salinas et al. 2020).

Both are evaluated on levels (after `transforms.integrate`), so for either head quantile 0.5 is the
point forecast.
"""

from __future__ import annotations

from statistics import NormalDist

import torch
from torch.nn import functional as F

from rnnlab.forecasting.transforms import integrate

SCALE_FLOOR = 1e-3


def outputs_per_step(head: str, quantiles: tuple[float, ...]) -> int:
    return len(quantiles) if head == "quantile" else 2


def location_outputs(head: str, quantiles: tuple[float, ...]) -> tuple[bool, ...]:
    """Which of the K outputs are locations (all quantiles; the Gaussian's mean, not its scale)."""
    return (True,) * len(quantiles) if head == "quantile" else (True, False)


def to_levels(raw: torch.Tensor, head: str, history: torch.Tensor, lags: tuple[int, ...]) -> torch.Tensor:
    """Network output [B, H, D, K] -> level parameters: increments integrated back into levels.

    For the Gaussian head only the location is integrated; its scale is the scale of the level.
    """
    if head == "quantile":
        return integrate(history, raw, lags)
    loc = integrate(history, raw[..., :1], lags)
    scale = F.softplus(raw[..., 1:]) + SCALE_FLOOR
    return torch.cat([loc, scale], dim=-1)


def loss(levels: torch.Tensor, target: torch.Tensor, head: str, quantiles: torch.Tensor) -> torch.Tensor:
    """Mean loss of level parameters [B, H, D, K] against targets [B, H, D]."""
    if head == "quantile":
        error = target.unsqueeze(-1) - levels  # [B, H, D, Q]
        return torch.maximum(quantiles * error, (quantiles - 1) * error).mean()
    loc, scale = levels[..., 0], levels[..., 1]
    return (torch.log(scale) + 0.5 * ((target - loc) / scale) ** 2).mean()


def to_quantiles(levels: torch.Tensor, head: str, quantiles: tuple[float, ...]) -> torch.Tensor:
    """Level parameters [B, H, D, K] -> sorted quantiles [B, H, D, Q]."""
    if head == "quantile":
        return levels.sort(dim=-1).values
    z = torch.tensor([NormalDist().inv_cdf(q) for q in quantiles], dtype=levels.dtype)
    return levels[..., :1] + levels[..., 1:] * z


def sample(levels: torch.Tensor, head: str, quantiles: tuple[float, ...], generator: torch.Generator) -> torch.Tensor:
    """One draw per row from level parameters [S, 1, D, K] -> [S, 1, D] (the recursive mode's next step).

    Quantile head: inverse-transform sampling on the piecewise-linear quantile function; draws beyond the
    outermost learned quantiles are clamped to them.
    """
    if head == "gaussian":
        noise = torch.randn(levels.shape[:-1], generator=generator, dtype=levels.dtype)
        return levels[..., 0] + levels[..., 1] * noise
    qs = torch.tensor(quantiles, dtype=levels.dtype)
    values = levels.sort(dim=-1).values
    u = torch.rand(levels.shape[:-1], generator=generator, dtype=levels.dtype).clamp(qs[0], qs[-1])
    upper = torch.searchsorted(qs, u.reshape(-1).contiguous()).clamp(1, len(qs) - 1).reshape(u.shape)
    lower = upper - 1
    q_lo, q_hi = qs[lower], qs[upper]
    v_lo = values.gather(-1, lower.unsqueeze(-1)).squeeze(-1)
    v_hi = values.gather(-1, upper.unsqueeze(-1)).squeeze(-1)
    return v_lo + (u - q_lo) / (q_hi - q_lo) * (v_hi - v_lo)
