"""Every forecaster by name, and loading any of them from its model directory.

    make_forecaster("auto", horizon=12)          AutoForecaster: networks and classical models compared on
                                                 the series' own last 12 points (the default of the CLI)
    make_forecaster("lstm", horizon=12)          RNNForecaster(cell="lstm", horizon=12)
    make_forecaster("auto-ets", horizon=12)      StatsForecastForecaster("auto-ets", horizon=12)
    load_forecaster("model_dir")                 whichever kind config.json names
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnlab.errors import ConfigError, ModelDirError
from rnnlab.forecasting.auto import AutoForecaster
from rnnlab.forecasting.base import Forecaster, read_config
from rnnlab.forecasting.baselines import (
    BASELINES,
    STATSFORECAST_MODELS,
    DriftForecaster,
    NaiveForecaster,
    SeasonalNaiveForecaster,
    StatsForecastForecaster,
    load_baseline,
    make_baseline,
)
from rnnlab.forecasting.config import ForecastConfig
from rnnlab.forecasting.panel import GlobalForecaster, LocalPanel
from rnnlab.forecasting.rnn import RNNForecaster

RNN_NAMES = ("rnn", "lstm", "gru")
MODELS = ("auto", *RNN_NAMES, *BASELINES, *STATSFORECAST_MODELS)

__all__ = ["AutoForecaster", "Forecaster", "RNNForecaster", "NaiveForecaster", "SeasonalNaiveForecaster", "DriftForecaster",
           "StatsForecastForecaster", "MODELS", "make_forecaster", "load_forecaster"]


def make_forecaster(spec: str, *, progress: bool = False, **settings: Any) -> Forecaster:
    """A forecaster by name. `rnn` keeps the configured cell; `lstm`/`gru` choose it. Baselines take
    horizon, season_length and intervals; the network takes any ForecastConfig setting."""
    if spec == "auto":
        members = settings.pop("ensemble", None)
        return AutoForecaster(ForecastConfig(**settings), progress=progress, members=members)
    if spec in RNN_NAMES:
        if spec != "rnn":
            settings["cell"] = spec
        return RNNForecaster(ForecastConfig(**settings), progress=progress)
    if spec in BASELINES or spec in STATSFORECAST_MODELS:
        return make_baseline(spec, **settings)
    raise ConfigError(f"--model must be one of {', '.join(MODELS)} (got {spec!r})")


def load_forecaster(directory: str | Path) -> Forecaster:
    """Load whatever forecaster `directory` holds (a missing or corrupt directory is a ModelDirError)."""
    kind = read_config(directory)["kind"]
    if kind == RNNForecaster.kind:
        return RNNForecaster.load(directory)
    if kind == AutoForecaster.kind:
        return AutoForecaster.load(directory)
    if kind == GlobalForecaster.kind:
        return GlobalForecaster.load(directory)
    if kind in BASELINES or kind in STATSFORECAST_MODELS:
        return load_baseline(directory)
    raise ModelDirError(f"{directory}: unknown model kind {kind!r}")


def describe(directory: str | Path) -> dict:
    """What `directory` holds, from its config.json alone: kind, settings, the series it was fitted on, and
    for an auto model its choice, every candidate's validation MASE and its network variants."""
    config = read_config(directory)
    series = config.get("series") or {}
    info = {"kind": config["kind"], "settings": config["settings"],
            "series": {k: series.get(k) for k in ("name", "length", "freq", "season_length", "columns")}}
    for key in ("choice", "validation", "variants"):
        if key in config:
            info[key] = config[key]
    return info


def make_panel_forecaster(spec: str, *, progress: bool = False, windows_per_series: int | None = None,
                          **settings: Any):
    """A forecaster for a panel of series: the networks (auto, rnn, lstm, gru) as one GlobalForecaster over
    every series; a baseline fitted to each series on its own."""
    if spec in ("auto", *RNN_NAMES):
        if spec in ("lstm", "gru"):
            settings["cell"] = spec
        # "auto" (no flag shapes the network): the panel defaults, derived from the series at fit time.
        return GlobalForecaster(ForecastConfig(**settings), progress=progress, windows_per_series=windows_per_series,
                                auto=spec == "auto", given=frozenset(settings) - {"horizon"})
    if spec in BASELINES or spec in STATSFORECAST_MODELS:
        return LocalPanel(make_baseline(spec, **settings))
    raise ConfigError(f"--model must be one of {', '.join(MODELS)} (got {spec!r})")
