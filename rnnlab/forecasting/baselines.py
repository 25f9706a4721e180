"""Baselines as ordinary forecasters: naive, seasonal naive, drift, and AutoARIMA / AutoETS / AutoTheta
through statsforecast. They forecast each target column on its own and use the target only (covariates
in the series are ignored), so a network that uses covariates is compared with what it adds to them.

Intervals of the simple baselines are normal, with the residual standard deviation sigma of the one-step
fitted values and the h-step multipliers of Hyndman & Athanasopoulos, FPP3 §5.5:
    naive  sigma*sqrt(h)   seasonal naive  sigma*sqrt(floor((h-1)/m) + 1)   drift  sigma*sqrt(h*(1 + h/(T-1)))

Saved models hold their settings and training series; the classical models are refitted on load (their
fitted state would need pickle), which is deterministic and takes seconds.
"""

from __future__ import annotations

from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from rnnlab.errors import ConfigError, DataError, MissingExtraError, ModelDirError, RnnlabError
from rnnlab.forecasting.backtest import backtest_method
from rnnlab.forecasting.base import read_config, read_series, write_config, write_series
from rnnlab.forecasting.forecast import Forecast
from rnnlab.forecasting.series import Series, as_series

DEFAULT_LEVELS = (80, 95)


def _check_h(h: int | None, default: int | None) -> int:
    h = default if h is None else h
    if h is None:
        raise ConfigError("--horizon is needed: this model was fitted without one")
    if not isinstance(h, int | np.integer) or h <= 0:
        raise ConfigError(f"--horizon must be a positive number of steps (got {h})")
    return int(h)


def _check_levels(levels: Any) -> tuple[int, ...]:
    levels = tuple(sorted(int(x) for x in levels))
    if not levels or not all(0 < x < 100 for x in levels):
        raise ConfigError(f"--intervals levels must lie strictly between 0 and 100 (got {levels})")
    return levels


class _Local:
    """What the local baselines share (a private helper class one level deep, not a public base class:
    the interface itself is the `Forecaster` protocol)."""

    kind = ""

    def __init__(self, horizon: int | None = None, season_length: int | None = None,
                 intervals: tuple[int, ...] = DEFAULT_LEVELS):
        if horizon is not None and horizon <= 0:
            raise ConfigError(f"--horizon must be a positive number of steps (got {horizon})")
        self.horizon = horizon
        self.season_length = season_length
        self.intervals = _check_levels(intervals)
        self.series: Series | None = None

    @property
    def name(self) -> str:
        return self.kind.replace("-", "_")

    def settings(self) -> dict:
        return {"horizon": self.horizon, "season_length": self.season_length, "intervals": list(self.intervals)}

    def clone(self):
        return type(self)(**self.settings())

    def with_horizon(self, horizon: int):
        self.horizon = horizon
        return self

    def _season(self, series: Series) -> int:
        return self.season_length or series.season_length

    def fit(self, series: Any):
        series = as_series(series)
        if len(series) < 2:
            raise DataError(f"{self.kind} needs at least 2 observations (got {len(series)})")
        self.series = series
        self._fit(series)
        return self

    def _fit(self, series: Series) -> None:
        pass

    def predict(self, h: int | None = None, series: Any = None) -> Forecast:
        h = _check_h(h, self.horizon)
        if series is not None:  # a local model: condition on new history by refitting on it
            return self.clone().fit(series).predict(h)
        if self.series is None:
            raise RnnlabError(f"{self.kind}: call fit() before predict()")
        mean, sigma = self._forecast(self.series, h)  # [H, D] each
        intervals = {}
        for level in self.intervals:
            z = NormalDist().inv_cdf(0.5 + level / 200)
            intervals[level] = (mean - z * sigma, mean + z * sigma)
        return Forecast(self.series.future_times(h), mean, intervals, self.series.columns, self.name)

    def _forecast(self, series: Series, h: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    backtest = backtest_method

    def save(self, directory: str | Path) -> None:
        if self.series is None:
            raise RnnlabError(f"{self.kind}: call fit() before save()")
        directory = Path(directory)
        write_series(directory, self.series)
        write_config(directory, self.kind, self.settings(), self.series)

    @classmethod
    def load(cls, directory: str | Path):
        """The fitted forecaster saved in `directory` (it must hold this kind of model)."""
        forecaster = load_baseline(directory)
        if not isinstance(forecaster, cls):
            raise ModelDirError(f"{directory} holds a model of kind {forecaster.kind!r}, not a {cls.__name__}")
        return forecaster

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.settings().items())})"


def _sigma(residuals: np.ndarray) -> np.ndarray:
    """[D] root mean square of the one-step residuals [N, D]."""
    if len(residuals) == 0:
        return np.zeros(residuals.shape[1])
    return np.sqrt(np.mean(residuals**2, axis=0))


class NaiveForecaster(_Local):
    """Every future value is the last observed one."""

    kind = "naive"

    def _forecast(self, series: Series, h: int) -> tuple[np.ndarray, np.ndarray]:
        y = series.values
        sigma = _sigma(y[1:] - y[:-1])
        steps = np.arange(1, h + 1)[:, None]
        return np.repeat(y[-1:], h, axis=0), sigma * np.sqrt(steps)


class SeasonalNaiveForecaster(_Local):
    """Every future value is the value one season before (the last observed season, repeated)."""

    kind = "seasonal-naive"

    def _forecast(self, series: Series, h: int) -> tuple[np.ndarray, np.ndarray]:
        y, m = series.values, self._season(series)
        if len(y) < m:
            raise DataError(f"seasonal-naive needs a full season of {m} observations (got {len(y)})")
        last_season = y[-m:]
        mean = last_season[np.arange(h) % m]
        sigma = _sigma(y[m:] - y[:-m])
        k = (np.arange(1, h + 1)[:, None] - 1) // m
        return mean, sigma * np.sqrt(k + 1)


class DriftForecaster(_Local):
    """The line from the first to the last observation, extended."""

    kind = "drift"

    def _forecast(self, series: Series, h: int) -> tuple[np.ndarray, np.ndarray]:
        y = series.values
        slope = (y[-1] - y[0]) / (len(y) - 1)
        steps = np.arange(1, h + 1)[:, None]
        sigma = _sigma(y[1:] - y[:-1] - slope)
        return y[-1] + steps * slope, sigma * np.sqrt(steps * (1 + steps / (len(y) - 1)))


STATSFORECAST_MODELS = {"auto-arima": "AutoARIMA", "auto-ets": "AutoETS", "auto-theta": "AutoTheta"}


class StatsForecastForecaster(_Local):
    """AutoARIMA, AutoETS or AutoTheta from statsforecast (imported when first fitted)."""

    def __init__(self, model: str = "auto-arima", horizon: int | None = None, season_length: int | None = None,
                 intervals: tuple[int, ...] = DEFAULT_LEVELS):
        if model not in STATSFORECAST_MODELS:
            raise ConfigError(f"--model must be one of {', '.join(STATSFORECAST_MODELS)} (got {model!r})")
        super().__init__(horizon, season_length, intervals)
        self.model = model
        self.kind = model
        self.fitted: list[Any] = []

    def settings(self) -> dict:
        return {"model": self.model, **super().settings()}

    def _fit(self, series: Series) -> None:
        try:
            import statsforecast.models as models
        except ImportError:
            raise MissingExtraError("statsforecast", f"--model {self.model}") from None
        cls = getattr(models, STATSFORECAST_MODELS[self.model])
        self.fitted = []
        for column in range(series.dim):
            try:
                self.fitted.append(cls(season_length=self._season(series)).fit(series.values[:, column]))
            except (ValueError, np.linalg.LinAlgError) as exc:
                raise DataError(f"{self.model} could not fit column {series.columns[column]!r}: {exc}") from None

    def predict(self, h: int | None = None, series: Any = None) -> Forecast:
        h = _check_h(h, self.horizon)
        if series is not None:
            return self.clone().fit(series).predict(h)
        if self.series is None:
            raise RnnlabError(f"{self.model}: call fit() before predict()")
        levels = list(self.intervals)
        outputs = [model.predict(h, level=levels) for model in self.fitted]
        mean = np.stack([out["mean"] for out in outputs], axis=1)
        intervals = {lv: (np.stack([out[f"lo-{lv}"] for out in outputs], axis=1),
                          np.stack([out[f"hi-{lv}"] for out in outputs], axis=1)) for lv in levels}
        return Forecast(self.series.future_times(h), mean, intervals, self.series.columns, self.name)


BASELINES = {"naive": NaiveForecaster, "seasonal-naive": SeasonalNaiveForecaster, "drift": DriftForecaster}


def make_baseline(kind: str, **settings: Any) -> _Local:
    if kind in BASELINES:
        return BASELINES[kind](**settings)
    if kind in STATSFORECAST_MODELS:
        return StatsForecastForecaster(kind, **settings)
    raise ConfigError(f"unknown baseline {kind!r}")


def load_baseline(directory: str | Path) -> _Local:
    directory = Path(directory)
    config = read_config(directory)
    settings = dict(config["settings"])
    settings.pop("model", None)
    settings["intervals"] = tuple(settings.get("intervals", DEFAULT_LEVELS))
    forecaster = make_baseline(config["kind"], **settings)
    return forecaster.fit(read_series(directory, config["series"]))
