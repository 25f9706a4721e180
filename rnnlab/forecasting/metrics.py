"""Forecast accuracy, as pure functions of NumPy arrays [H, D] (or [H]); multivariate values are averaged
over columns, each column scaled by its own in-sample error where a scale is involved.

    MAE, RMSE
    sMAPE  200/H * sum |y - f| / (|y| + |f|)                       (M4 competition, in percent, 0..200)
    MASE   MAE / in-sample MAE of the seasonal naive forecast      (Hyndman & Koehler 2006)
    coverage  share of actual values inside the interval
    MSIS   (mean width + 2/a * mean excess outside) / in-sample seasonal naive MAE, a = 1 - level/100 (M4)
"""

from __future__ import annotations

import numpy as np

from rnnlab.errors import DataError


def _2d(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x[:, None] if x.ndim == 1 else x


def mae(actual, forecast) -> float:
    return float(np.mean(np.abs(_2d(actual) - _2d(forecast))))


def rmse(actual, forecast) -> float:
    return float(np.mean(np.sqrt(np.mean((_2d(actual) - _2d(forecast)) ** 2, axis=0))))


def smape(actual, forecast) -> float:
    actual, forecast = _2d(actual), _2d(forecast)
    denominator = np.abs(actual) + np.abs(forecast)
    ratio = np.divide(np.abs(actual - forecast), denominator, out=np.zeros_like(denominator),
                      where=denominator > 0)
    return float(200.0 * ratio.mean())


def seasonal_scale(insample, season_length: int) -> np.ndarray:
    """[D] in-sample MAE of the seasonal naive forecast (lag m; lag 1 when the history is shorter)."""
    insample = _2d(insample)
    m = season_length if len(insample) > season_length else 1
    if len(insample) <= m:
        raise DataError("MASE needs at least two in-sample points")
    scale = np.mean(np.abs(insample[m:] - insample[:-m]), axis=0)
    if (scale <= 0).any():
        raise DataError("MASE is undefined: the in-sample seasonal naive forecast is perfect (flat series)")
    return scale


def mase(actual, forecast, insample, season_length: int = 1) -> float:
    errors = np.mean(np.abs(_2d(actual) - _2d(forecast)), axis=0)
    return float(np.mean(errors / seasonal_scale(insample, season_length)))


def coverage(actual, lower, upper) -> float:
    actual = _2d(actual)
    return float(np.mean((actual >= _2d(lower)) & (actual <= _2d(upper))))


def msis(actual, lower, upper, insample, season_length: int = 1, level: int = 95) -> float:
    actual, lower, upper = _2d(actual), _2d(lower), _2d(upper)
    alpha = 1 - level / 100
    penalty = (upper - lower) + 2 / alpha * (lower - actual) * (actual < lower) \
        + 2 / alpha * (actual - upper) * (actual > upper)
    return float(np.mean(penalty.mean(axis=0) / seasonal_scale(insample, season_length)))


def evaluate(forecast, actual, insample, season_length: int) -> dict[str, float]:
    """Every metric of one Forecast against the actual values [H, D]; interval metrics per level."""
    actual = _2d(actual)
    values = forecast.values[: len(actual)]
    out = {"mae": mae(actual, values), "rmse": rmse(actual, values), "smape": smape(actual, values),
           "mase": mase(actual, values, insample, season_length)}
    for level, (lower, upper) in forecast.intervals.items():
        lower, upper = lower[: len(actual)], upper[: len(actual)]
        out[f"coverage_{level}"] = coverage(actual, lower, upper)
        out[f"msis_{level}"] = msis(actual, lower, upper, insample, season_length, level)
    return out
