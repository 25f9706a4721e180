"""Shared fixtures: small CSV files and series; torch on one thread (tiny networks run fastest so)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def monthly_csv(tmp_path):
    """A 60-month seasonal series with a trend, a past covariate and a known-future covariate."""
    t = np.arange(60)
    frame = pd.DataFrame({
        "date": pd.date_range("2000-01-01", periods=60, freq="MS").strftime("%Y-%m-%d"),
        "sales": 100 + t + 10 * np.sin(2 * np.pi * t / 12),
        "visits": 50 + 0.5 * t,
        "promo": (t % 5 == 0).astype(float),
    })
    path = tmp_path / "sales.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def sine():
    """sine(length, period, noise, seed): a positive seasonal series with a slight trend."""

    def make(length: int = 120, period: int = 12, noise: float = 0.0, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        t = np.arange(length)
        return 10 + 3 * np.sin(2 * np.pi * t / period) + 0.02 * t + noise * rng.standard_normal(length)

    return make
