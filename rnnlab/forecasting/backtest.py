"""Rolling-origin evaluation, written once for every forecaster.

With T observations, horizon H, K origins and step S, origin k (k = 0..K-1) trains on the first
T - H - S*(K-1-k) points and forecasts the next H:

    |------------- train -------------|== H ==|
    |---------------- train ------------------|== H ==|        (S = H: the test windows tile the end)
    |------------------------ train ------------------|== H ==|

refit=True fits a fresh clone at every origin; refit=False fits once at the first origin and then only
conditions on the longer history (which for local models, such as the baselines, is a refit anyway).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnlab.errors import ConfigError, DataError
from rnnlab.forecasting.forecast import Forecast
from rnnlab.forecasting.metrics import evaluate
from rnnlab.forecasting.series import as_series  # raises the one-line 'install the forecast extra' error


@dataclass
class BacktestResult:
    model: str
    horizon: int
    cutoffs: list = field(default_factory=list)  # time of the last training point, per origin
    forecasts: list[Forecast] = field(default_factory=list)
    actuals: list[np.ndarray] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)
    fitted: list[Any] = field(default_factory=list)  # the forecaster fitted at each origin (refit or not)

    @property
    def summary(self) -> dict[str, float]:
        """Each metric averaged over the origins."""
        return {name: float(np.mean([m[name] for m in self.metrics])) for name in self.metrics[0]}

    def to_frame(self):
        """One row per origin: its cutoff and every metric (a pandas DataFrame)."""
        import pandas as pd

        frame = pd.DataFrame(self.metrics)
        frame.insert(0, "cutoff", [str(c) for c in self.cutoffs])
        return frame

    def forecasts_frame(self):
        """Every forecast beside the actual values, with the cutoff it was made from (a pandas DataFrame)."""
        import pandas as pd

        parts = []
        for cutoff, forecast, actual in zip(self.cutoffs, self.forecasts, self.actuals):
            frame = forecast.to_frame()
            for d, name in enumerate(forecast.columns):
                frame.insert(0, f"{name}_actual", actual[:, d])
            frame.insert(0, "cutoff", str(cutoff))
            parts.append(frame)
        return pd.concat(parts)


def _origins_plan(forecaster: Any, horizon: int | None, origins: int, step: int | None) -> tuple[int, int]:
    """The horizon and step of a rolling-origin backtest, the forecaster's horizon and H being the defaults.

    `is None`, not `or`: a 0 given is an error, never silently the default.
    """
    horizon = forecaster.horizon if horizon is None else horizon
    if horizon is None or horizon <= 0:
        raise ConfigError(f"--horizon must be a positive number of steps (got {horizon})")
    if origins < 1:
        raise ConfigError(f"--origins must be at least 1 (got {origins})")
    step = horizon if step is None else step
    if step < 1:
        raise ConfigError(f"--step must be at least 1 (got {step})")
    return horizon, step


def backtest(forecaster: Any, series: Any, horizon: int | None = None, origins: int = 3, step: int | None = None,
             refit: bool = True) -> BacktestResult:
    """Evaluate `forecaster` (left unfitted: clones are fitted) at `origins` rolling origins."""
    series = as_series(series)
    horizon, step = _origins_plan(forecaster, horizon, origins, step)
    cuts = [len(series) - horizon - step * (origins - 1 - k) for k in range(origins)]
    if cuts[0] < 2:
        raise DataError(f"the series has {len(series)} points: too short for {origins} origins of "
                        f"horizon {horizon} every {step} steps")
    result = BacktestResult(model=forecaster.name, horizon=horizon)
    fitted = None
    for cut in cuts:
        history = series.until(cut)
        if refit or fitted is None:
            fitted = _with_horizon(forecaster.clone(), horizon).fit(history)
            forecast = fitted.predict(horizon)
        else:
            forecast = fitted.predict(horizon, series=history)
        actual = series.values[cut:cut + horizon]
        result.cutoffs.append(series.index[cut - 1])
        result.forecasts.append(forecast)
        result.actuals.append(actual)
        result.metrics.append(evaluate(forecast, actual, history.values, series.season_length))
        result.fitted.append(fitted)
    return result


def _with_horizon(forecaster: Any, horizon: int) -> Any:
    """Forecasters that train for a horizon (the network) must train for the one evaluated."""
    if hasattr(forecaster, "with_horizon"):
        return forecaster.with_horizon(horizon)
    return forecaster


def backtest_method(self, series: Any, horizon: int | None = None, origins: int = 3, step: int | None = None,
                    refit: bool = True) -> BacktestResult:
    """`forecaster.backtest(...)`: see `backtest`."""
    return backtest(self, series, horizon=horizon, origins=origins, step=step, refit=refit)


def backtest_panel(forecaster: Any, panel: Any, horizon: int | None = None, origins: int = 3,
                   step: int | None = None) -> dict:
    """Rolling origins over a panel: at origin k every series loses its last H + S*(K-1-k) points, a fresh
    clone is fitted on what is left (one global fit, or one local fit per series) and forecasts H steps.
    Returns the metrics averaged over series and origins, and each series' metrics averaged over origins."""
    from rnnlab.forecasting.panel import as_panel

    panel = as_panel(panel)
    horizon, step = _origins_plan(forecaster, horizon, origins, step)
    shortest = min(panel, key=len)
    if len(shortest) - horizon - step * (origins - 1) < 2:
        raise DataError(f"series {shortest.name!r} has {len(shortest)} points: too short for {origins} origins of "
                        f"horizon {horizon} every {step} steps")
    per_series: dict[str, list[dict]] = {s.name: [] for s in panel}
    for k in range(origins):
        back = horizon + step * (origins - 1 - k)
        history = [s.until(len(s) - back) for s in panel]
        model = forecaster.clone()
        if hasattr(model, "with_horizon"):
            model = model.with_horizon(horizon)
        elif hasattr(model, "config"):
            model.config = model.config.replace(horizon=horizon)
        forecasts = model.fit(history).predict(horizon)
        for series, cut, forecast in zip(panel, history, forecasts):
            actual = series.values[len(cut):len(cut) + horizon]
            per_series[series.name].append(evaluate(forecast, actual, cut.values, series.season_length))
    mean = lambda rows: {m: float(np.mean([r[m] for r in rows])) for m in rows[0]}  # noqa: E731
    by_series = {name: mean(rows) for name, rows in per_series.items()}
    return {"model": forecaster.name, "horizon": horizon, "origins": origins, "series": len(panel),
            "metrics": mean(list(by_series.values())), "per_series": by_series}
