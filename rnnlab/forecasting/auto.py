"""AutoForecaster: the default forecaster, which decides on the series' own held-out tail what to trust.

With no tuning flags, a user should never get a network that loses to seasonal naive. So the decision is
made the way a careful forecaster would make it by hand, on data the final forecast never scores:

    series  |--------------------- fit ---------------------|== H ==|== tail (H) ==|
    candidates, each fitted on everything before the tail, forecast the tail (and, on a series long
    enough, also the H points before it; the score is the mean MASE of both windows):
        networks   one RNNForecaster per transform variant (as given; log + seasonal differencing for short
                   seasons), each an ensemble of seeds
        ensemble   the median of every variant's members
        classical  seasonal naive, AutoETS, AutoTheta (statsforecast; the last two for seasons up to 24,
                   past which their fitting time grows with the season)
        blends     the mean of the best network candidate and the best classical one
    the candidate with the lowest MASE on the tail is the choice.

The networks keep the weights they were fitted with (before the tail) and forecast from the whole series
(a network conditions on new history; refitting it would train a model nobody validated); the classical
models, local by nature, are refitted on the whole series. `choice` and `validation` (every candidate's
MASE) are saved in config.json, printed by `forecast train` and shown by `forecast info`.

Model directory: config.json (kind "auto", the choice, the scores), series.safetensors, and one
subdirectory `variant-<i>/` per network variant (an ordinary rnn model directory).
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.errors import ConfigError, DataError, ModelDirError, RnnlabError
from rnnlab.forecasting import metrics
from rnnlab.forecasting.backtest import backtest_method
from rnnlab.forecasting.base import read_config, read_series, write_config, write_series
from rnnlab.forecasting.baselines import make_baseline
from rnnlab.forecasting.config import ForecastConfig
from rnnlab.forecasting.fit import TrainingDivergedError
from rnnlab.forecasting.forecast import Forecast
from rnnlab.forecasting.rnn import MAX_LOOKBACK, RNNForecaster
from rnnlab.forecasting.series import Series, as_series

CLASSICAL = ("seasonal-naive", "auto-ets", "auto-theta")
SLOW_SEASON = 24  # AutoETS/AutoTheta take minutes on a season of 336 over thousands of points
SMALL = 2000  # training windows up to which each variant is an ensemble of 3 seeds (cheap), else 1
MIN_WINDOWS = 16  # a variant with fewer training windows than this is not tried
VARIANT_PREFIX = "variant-"


def network_variants(series: Series, config: ForecastConfig) -> list[dict]:
    """The transform variants tried: the settings as given, and, for a season short enough to sit in the
    window, seasonal differencing (with the log when every value is positive: multiplicative seasons)."""
    variants: list[dict] = [{}]
    m = series.season_length
    if config.log or config.diff:  # the user decided the transforms
        return variants
    if 1 < m and 3 * m <= MAX_LOOKBACK:
        variants.append({"log": True, "diff": ("season",)} if series.values.min() > 0 else {"diff": ("season",)})
    return variants


def _describe(changes: dict) -> str:
    parts = ["log"] if changes.get("log") else []
    if changes.get("diff"):
        parts.append("diff " + ",".join(map(str, changes["diff"])))
    return "+".join(parts) or "plain"


def _score(forecast: Forecast, actual: np.ndarray, insample: np.ndarray, season: int) -> float:
    try:
        return metrics.mase(actual, forecast.values, insample, season)
    except DataError:  # a flat in-sample history: no seasonal-naive scale, compare by MAE
        return metrics.mae(actual, forecast.values)


def mean_forecast(forecasts: list[Forecast], name: str) -> Forecast:
    """The average of forecasts on one index: point values and every interval bound averaged."""
    first = forecasts[0]
    values = np.mean([f.values for f in forecasts], axis=0)
    intervals = {lv: (np.mean([f.intervals[lv][0] for f in forecasts], axis=0),
                      np.mean([f.intervals[lv][1] for f in forecasts], axis=0)) for lv in first.intervals}
    return Forecast(first.index, values, intervals, first.columns, name)


class AutoForecaster:
    """Networks and classical models compared on the held-out tail; the best (or a blend) forecasts."""

    kind = "auto"
    backtest = backtest_method

    def __init__(self, config: ForecastConfig | None = None, *, progress: bool = False, members: int | None = None,
                 **settings: Any):
        config = config or ForecastConfig()
        self.config = config.replace(**settings) if settings else config
        if members is not None and members < 1:
            raise ConfigError(f"--ensemble must be at least 1 (got {members})")
        self.members = members
        self.progress = progress
        self.series: Series | None = None
        self.variants: list[dict] = []
        self.networks: list[RNNForecaster] = []
        self.classical: dict[str, Any] = {}
        self.choice: dict = {}
        self.validation: dict[str, float] = {}

    @property
    def name(self) -> str:
        return "rnnlab_auto"

    @property
    def horizon(self) -> int:
        return self.config.horizon

    def clone(self) -> AutoForecaster:
        return AutoForecaster(self.config, progress=self.progress, members=self.members)

    def with_horizon(self, horizon: int) -> AutoForecaster:
        if horizon != self.config.horizon:
            self.config = self.config.replace(horizon=horizon)
        return self

    def __repr__(self) -> str:
        return f"AutoForecaster({self.config!r}, members={self.members!r})"

    # -- fitting -----------------------------------------------------------------------------------
    def fit(self, series: Any) -> AutoForecaster:
        series = as_series(series)
        h, m = self.config.horizon, series.season_length
        if len(series) < h + 4:
            raise DataError(f"the series has {len(series)} points: too short to hold out a tail of --horizon {h} "
                            "and fit on what is left")
        # Validation windows: the last H points, and the H before them when the series is long enough (one
        # window of H points is a noisy judge). Classical models are refitted before each; the networks are
        # fitted once, before the last window, and condition on the shorter history for the earlier one.
        cuts = [len(series) - h] + ([len(series) - 2 * h] if len(series) - 2 * h >= max(2 * m, 3 * h, 24) else [])
        forecasts: dict[str, list[Forecast]] = {}
        for kind in CLASSICAL:
            if kind != "seasonal-naive" and m > SLOW_SEASON:
                continue
            try:
                made = [make_baseline(kind, horizon=h, intervals=self.config.intervals).fit(series.until(c)).predict(h)
                        for c in cuts]
            except (DataError, RnnlabError):
                continue
            if all(np.isfinite(f.values).all() for f in made):
                forecasts[kind] = made
        history = series.until(cuts[0])
        self.variants, self.networks = [], []
        for changes in network_variants(history, self.config):
            network = RNNForecaster(self.config.replace(**changes), progress=self.progress)
            try:
                config = network.resolve(history)
            except (ConfigError, DataError):
                continue
            windows = len(history) - config.lookback - config.horizon + 1 - config.val_size
            if windows < MIN_WINDOWS:
                continue
            ensemble = self.members if self.members is not None else (3 if windows <= SMALL else 1)
            network.config = network.config.replace(ensemble=ensemble)
            try:
                network.fit(history)
            except TrainingDivergedError:  # a variant whose training diverged is not a candidate
                continue
            made = [network.predict(h)]
            for c in cuts[1:]:
                try:
                    made.append(network.predict(h, series=series.until(c)))
                except DataError:  # too short for the window: judge everything on the last H points only
                    cuts = cuts[:1]
            forecasts[f"network:{_describe(changes)}"] = made
            self.variants.append(changes)
            self.networks.append(network)
        forecasts = {k: v[: len(cuts)] for k, v in forecasts.items()}
        actuals = [series.values[c:c + h] for c in cuts]

        def score(made: list[Forecast]) -> float:
            return float(np.mean([_score(f, a, series.values[:c], m) for f, a, c in zip(made, actuals, cuts)]))

        nets = [k for k in forecasts if k.startswith("network:")]
        if len(nets) > 1:  # a mean of the variants' medians
            forecasts["networks"] = [mean_forecast(list(group), "networks") for group in zip(*(forecasts[k] for k in nets))]
            nets.append("networks")
        scores = {k: score(v) for k, v in forecasts.items()}
        classical = [k for k in scores if k in CLASSICAL]
        if nets and classical:
            best_net = min(nets, key=scores.get)
            best_classical = min(classical, key=scores.get)
            key = f"blend:{best_net}+{best_classical}"
            forecasts[key] = [mean_forecast([a, b], key) for a, b in zip(forecasts[best_net], forecasts[best_classical])]
            scores[key] = score(forecasts[key])
        if not scores:
            raise DataError("no candidate could be fitted on this series (it is too short for every model)")
        best = min(scores, key=scores.get)
        self.validation = {k: round(float(v), 6) for k, v in scores.items()}
        self.choice = {"candidate": best, "validation_mase": round(float(scores[best]), 6),
                       "seasonal_naive_mase": self.validation.get("seasonal-naive"), "tail": h * len(cuts)}
        self.series = series
        self.classical = {}
        for kind in self._classical_parts():
            self.classical[kind] = make_baseline(kind, horizon=h, intervals=self.config.intervals).fit(series)
        return self

    def _parts(self) -> list[str]:
        best = self.choice["candidate"]
        if best.startswith("blend:"):
            return best.removeprefix("blend:").split("+", 1)
        return [best]

    def _classical_parts(self) -> list[str]:
        return [p for p in self._parts() if p in CLASSICAL]

    def summary(self) -> str:
        """One line: what was chosen, and by how much it beat seasonal naive on the tail."""
        naive = self.choice.get("seasonal_naive_mase")
        against = f" (seasonal naive {naive:.3f})" if naive is not None else ""
        return (f"auto: chose {self.choice['candidate']}, validation MASE {self.choice['validation_mase']:.3f}"
                f"{against} on the last {self.choice['tail']} points")

    # -- prediction --------------------------------------------------------------------------------
    def predict(self, h: int | None = None, series: Any = None) -> Forecast:
        if not self.choice:
            raise RnnlabError("AutoForecaster: call fit() or load() before predict()")
        h = self.config.horizon if h is None else h
        history = self.series if series is None else as_series(series)
        parts = []
        for part in self._parts():
            parts.append(self._forecast_part(part, h, history, series is not None))
        return replace(parts[0], model=self.name) if len(parts) == 1 else mean_forecast(parts, self.name)

    def _forecast_part(self, part: str, h: int, history: Series, new_history: bool) -> Forecast:
        if part in CLASSICAL:
            model = self.classical[part]
            return model.predict(h, series=history if new_history else None)
        keys = [f"network:{_describe(v)}" for v in self.variants]
        chosen = range(len(keys)) if part == "networks" else [keys.index(part)]
        forecasts = [self.networks[i].predict(h, series=history) for i in chosen]
        return forecasts[0] if len(forecasts) == 1 else mean_forecast(forecasts, "networks")

    # -- persistence -------------------------------------------------------------------------------
    def settings(self) -> dict:
        return {"config": self.config.to_dict(), "members": self.members}

    def save(self, directory: str | Path) -> None:
        if not self.choice:
            raise RnnlabError("AutoForecaster: call fit() before save()")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob(f"{VARIANT_PREFIX}*"):
            if old.is_dir():
                shutil.rmtree(old)
        for i, network in enumerate(self.networks):
            network.save(directory / f"{VARIANT_PREFIX}{i}")
        write_series(directory, self.series)
        write_config(directory, self.kind, self.settings(), self.series, choice=self.choice,
                     validation=self.validation,
                     variants=[{k: list(v) if isinstance(v, tuple) else v for k, v in c.items()}
                               for c in self.variants])

    @classmethod
    def load(cls, directory: str | Path) -> AutoForecaster:
        directory = Path(directory)
        config = read_config(directory)
        if config["kind"] != cls.kind:
            raise ModelDirError(f"{directory} holds a {config['kind']} model, not an auto model")
        try:
            settings = config["settings"]
            forecaster = cls(ForecastConfig.from_dict(settings["config"]), members=settings.get("members"))
            forecaster.choice = dict(config["choice"])
            forecaster.validation = dict(config["validation"])
            forecaster.variants = [{k: tuple(v) if isinstance(v, list) else v for k, v in c.items()}
                                   for c in config["variants"]]
        except (KeyError, TypeError, AttributeError) as exc:
            raise ModelDirError(f"{directory}/config.json is not an auto model's config ({exc})") from None
        forecaster.series = read_series(directory, config["series"])
        forecaster.networks = [RNNForecaster.load(directory / f"{VARIANT_PREFIX}{i}")
                               for i in range(len(forecaster.variants))]
        for kind in forecaster._classical_parts():
            forecaster.classical[kind] = make_baseline(kind, horizon=forecaster.horizon,
                                                       intervals=forecaster.config.intervals).fit(forecaster.series)
        return forecaster
