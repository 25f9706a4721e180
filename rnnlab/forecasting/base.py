"""The one interface every forecaster speaks, and the model directory they all share.

    fit(series) -> self            series: a Series, a NumPy array [T] / [T, D], or a pandas object
    predict(h=None, series=None)   -> Forecast; `series` conditions on new history (global models) or is
                                   refitted on (local models); h defaults to the horizon fitted for
    backtest(series, horizon, origins, step, refit)   rolling origins, written once in backtest.py
    save(directory) / load(directory)                 config.json + safetensors, never pickle
    clone()                        an unfitted copy with the same settings (what backtest refits)

There is no base class to inherit from: a forecaster is any object with these methods (checked
structurally by `Forecaster`), and each class reuses `backtest.backtest_method` by assignment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from rnnlab import _io
from rnnlab.config import FORMAT_VERSION
from rnnlab.errors import ModelDirError
from rnnlab.forecasting.forecast import Forecast
from rnnlab.forecasting.series import Series
from rnnlab.training.checkpoint import check_format_version

CONFIG_FILE = "config.json"
SERIES_FILE = "series.safetensors"


@runtime_checkable
class Forecaster(Protocol):
    kind: str
    horizon: int | None

    @property
    def name(self) -> str: ...

    def fit(self, series: Any) -> Forecaster: ...

    def predict(self, h: int | None = None, series: Any = None) -> Forecast: ...

    def backtest(self, series: Any, horizon: int | None = None, origins: int = 3, step: int | None = None,
                 refit: bool = True) -> Any: ...

    def save(self, directory: str | Path) -> None: ...

    def clone(self) -> Forecaster: ...


def write_series(directory: Path, series: Series) -> None:
    _io.save_tensors(directory / SERIES_FILE, {k: torch.from_numpy(np.ascontiguousarray(v))
                                               for k, v in series.arrays().items()})


def read_series(directory: Path, meta: dict) -> Series:
    tensors = _io.load_tensors(directory / SERIES_FILE)
    try:
        return Series.from_meta(meta, {k: v.numpy().astype(np.float64) for k, v in tensors.items()})
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelDirError(f"{directory}: the stored series does not match config.json ({exc})") from None


def write_config(directory: Path, kind: str, settings: dict, series: Series | None, **extra: Any) -> None:
    payload = {"format_version": FORMAT_VERSION, "kind": kind, "settings": settings,
               "series": None if series is None else series.meta(), **extra}
    _io.write_json(directory / CONFIG_FILE, payload)


def read_config(directory: str | Path) -> dict:
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelDirError(f"{directory}: no such model directory")
    if not (directory / CONFIG_FILE).is_file():
        raise ModelDirError(f"{directory} is not a forecast model directory (no {CONFIG_FILE})")
    config = _io.read_json(directory / CONFIG_FILE)
    if not isinstance(config, dict) or "kind" not in config or "settings" not in config:
        raise ModelDirError(f"{directory / CONFIG_FILE} is not a forecast model config")
    check_format_version(directory / CONFIG_FILE, config)  # the rule of every model directory
    return config
