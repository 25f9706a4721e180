"""Many series, one model: a panel of series and the global recurrent forecaster trained over all of them.

The forecasting competitions that recurrent networks won were won by one network trained across many
series (Smyl's ES-RNN in M4, DeepAR, N-BEATS), not by one network per series: a series of 700 points is
too short to teach a network much; 414 of them are not. So:

    panel: S series (ids, each its own length)
      -> per-series transform (log, scaler), fitted on that series' own training range
      -> windows of every series, pooled (at most `windows_per_series` origins drawn from each, seeded):
             series 0  |--w--|--w--|....           origins sampled before the validation tail
             series 1  |--w--|....
      -> one ensemble trained on the pool by fit.fit_members (the shared training loop, a run per member)
      -> validation: one window per series, the one whose target is that series' last H points
    predict: the last window of every series in one batch per member -> median -> each series' inverse

The network, window normalisation, differencing, season profile and heads are the single-series
RNNForecaster's (`self.core`), so a panel of one series trains the same kind of model.

Model directory: config.json (kind "global", settings, every series' description), scaler.json (one target
transform per series), panel.safetensors (the series' values end to end, and their lengths),
model.safetensors (member{i}.* weights), metrics.jsonl.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnlab import _io
from rnnlab.errors import ConfigError, DataError, ModelDirError, RnnlabError
from rnnlab.forecasting import heads
from rnnlab.forecasting.base import CONFIG_FILE, FORMAT_VERSION, read_config
from rnnlab.forecasting.config import ForecastConfig
from rnnlab.forecasting.fit import fit_members
from rnnlab.forecasting.forecast import Forecast, from_quantiles
from rnnlab.forecasting.rnn import (
    MODEL_FILE,
    SCALER_FILE,
    RNNForecaster,
    _threads,
    default_batch_size,
    default_epochs,
    load_members,
    save_members,
)
from rnnlab.forecasting.series import Series, as_series
from rnnlab.forecasting.transforms import TargetTransform
from rnnlab.forecasting.windows import Windows, last_window, make_windows
from rnnlab.training.seeding import pick_device

PANEL_FILE = "panel.safetensors"


def as_panel(data: Any) -> list[Series]:
    """A list of Series (or of anything `as_series` reads) with one name each; a single series is a panel of one."""
    if isinstance(data, Series):
        return [data]
    panel = [as_series(item) for item in data]
    if not panel:
        raise DataError("the panel holds no series")
    names = [s.name for s in panel]
    if len(set(names)) != len(names):
        raise DataError(f"series ids repeat in the panel (e.g. {next(n for n in names if names.count(n) > 1)!r})")
    seasons = {s.season_length for s in panel}
    if len(seasons) > 1:
        raise DataError(f"the series of a panel share one season length (got {sorted(seasons)}); "
                        "pass --season-length")
    if any(s.dim != 1 or s.n_past or s.n_future for s in panel):
        raise DataError("a panel's series are univariate, without covariates")
    return panel


# The defaults of a panel's network when no flag shapes it, chosen on M4 Hourly's dev split (the last 48
# training points of its 414 series; benchmarks/results/m4-hourly-dev.jsonl), where they took the network's
# OWA from 0.816 (32 wide, read step by step, 64 windows a series) to 0.451: a window of 7 seasons read a
# season per recurrent step (SegRNN's patches) by a 256-wide LSTM with the linear highway, log levels
# normalised by each window's mean, every window of every series (at most 1,000 each), and about 8,000
# optimiser steps. Two seeds, not three: 0.447 on the same split, and a third of the CPU time less.
PANEL_SEASONS, PANEL_MAX_LOOKBACK, PANEL_WINDOWS, PANEL_STEPS = 7, 192, 1000, 8000


def panel_defaults(panel: list[Series], horizon: int) -> dict[str, Any]:
    """The settings a panel's network gets when no flag shapes it (see PANEL_SEASONS)."""
    season = panel[0].season_length
    shortest = min(len(s) for s in panel)
    settings: dict[str, Any] = {"window_norm": "mean", "highway": True, "ensemble": 2, "threads": None,
                                "log": all(float(np.min(s.values)) > 0 for s in panel)}
    lookback = PANEL_SEASONS * season
    # Patches of a season when seven of them fit the window cap and the shortest series (with room for a
    # validation tail and a few training windows); otherwise the single-series defaults, read step by step.
    if 4 <= season and lookback <= PANEL_MAX_LOOKBACK and shortest >= lookback + 3 * horizon:
        settings.update(lookback=lookback, patch=season, hidden_size=256)
    else:
        settings.update(hidden_size=64)
    return settings


class GlobalForecaster:
    """One recurrent network (an ensemble of seeds) over every series of a panel.

    `auto=True` (no flag shapes the network) derives the network's settings from the panel at fit time
    (`panel_defaults`); the names in `given` are the user's and stay as they are.
    """

    kind = "global"

    def __init__(self, config: ForecastConfig | None = None, *, progress: bool = False,
                 windows_per_series: int | None = None, auto: bool = False, given: frozenset[str] = frozenset(),
                 **settings: Any):
        config = config or ForecastConfig()
        self.config = config.replace(**settings) if settings else config
        self.auto, self.given = auto, frozenset(given) | frozenset(settings)
        if windows_per_series is None:
            windows_per_series = PANEL_WINDOWS if auto else 64
        if windows_per_series < 1:
            raise ConfigError(f"--windows-per-series must be at least 1 (got {windows_per_series})")
        self.windows_per_series = windows_per_series
        self.progress = progress
        self.panel: list[Series] = []
        self.transforms: list[TargetTransform] = []
        self.core: RNNForecaster | None = None
        self.metrics: list[dict] = []

    @property
    def name(self) -> str:
        return f"rnnlab_global_{self.config.cell}"

    @property
    def horizon(self) -> int:
        return self.config.horizon

    @property
    def fitted_config(self) -> ForecastConfig | None:
        return None if self.core is None else self.core.fitted_config

    def clone(self) -> GlobalForecaster:
        return GlobalForecaster(self.config, progress=self.progress, windows_per_series=self.windows_per_series,
                                auto=self.auto, given=self.given)

    def with_horizon(self, horizon: int) -> GlobalForecaster:
        if horizon != self.config.horizon:
            self.config = self.config.replace(horizon=horizon)
        return self

    # -- fitting -----------------------------------------------------------------------------------
    def resolve(self, panel: list[Series]) -> ForecastConfig:
        """The derived settings, read off the shortest series (every series must hold them)."""
        shortest = min(panel, key=len)
        requested = self.config
        if self.auto:
            derived = {k: v for k, v in panel_defaults(panel, requested.horizon).items() if k not in self.given}
            requested = requested.replace(**derived)
        core = RNNForecaster(requested.replace(batch_size=requested.batch_size or 32, epochs=requested.epochs or 1))
        try:
            config = core.resolve(shortest)
        except (ConfigError, DataError) as exc:
            raise type(exc)(f"series {shortest.name!r}: {exc.message}") from None
        if config.recursive:
            raise ConfigError("a global model uses the direct head: drop --recursive")
        return config.replace(batch_size=requested.batch_size, epochs=requested.epochs)

    def _origins(self, length: int, config: ForecastConfig, first: int) -> tuple[np.ndarray, int | None]:
        """Training origins of one series (every target before its validation tail) and its validation origin."""
        last = length - config.horizon - config.val_size
        val = length - config.horizon if config.val_size else None
        return np.arange(first, last + 1), val

    def fit(self, panel: Any) -> GlobalForecaster:
        panel = as_panel(panel)
        config = self.resolve(panel)
        core = RNNForecaster(config, progress=self.progress)
        core.fitted_config, core.series = config, panel[0]
        profile = core._profile
        rng = np.random.default_rng(config.seed)
        self.transforms, train_parts, val_parts = [], [], []
        for series in panel:
            transform = TargetTransform(log=config.log, columns=series.columns)
            # fitted on the training range only: the validation tail is held out of the scaling too
            fit_range = series.values[: len(series) - config.val_size] if config.val_size else series.values
            self.transforms.append(transform.fit(fit_range, config.scaler))
            values = transform.transform(series.values)
            none = np.zeros((len(series), 0))
            every = make_windows(values[: len(series) - config.val_size] if config.val_size else values,
                                 none, none, config.lookback, config.horizon, profile=profile)
            if len(every) == 0:
                raise DataError(f"series {series.name!r} ({len(series)} points) leaves no training window")
            take = np.sort(rng.choice(len(every), size=min(self.windows_per_series, len(every)), replace=False))
            train_parts.append(every.subset(torch.from_numpy(take)))
            if config.val_size:
                val_parts.append(make_windows(values, none, none, config.lookback, config.horizon,
                                              origins=np.array([len(series) - config.horizon]), profile=profile))
        train = Windows.concat(train_parts)
        val = Windows.concat(val_parts) if val_parts else None
        batch = config.batch_size or default_batch_size(len(train))
        steps = -(-len(train) // batch)
        # Epochs the user did not set: about PANEL_STEPS optimiser steps for the panel defaults.
        epochs = config.epochs or (max(1, round(PANEL_STEPS / steps)) if self.auto
                                   else default_epochs(len(train), batch))
        config = config.replace(batch_size=batch, epochs=epochs)
        core.fitted_config = config
        device = pick_device(config.device)
        train, val = train.to(device), (val.to(device) if val is not None else None)
        quantiles = torch.tensor(config.quantiles, dtype=torch.float32, device=device)

        def window_loss(network, w: Windows) -> torch.Tensor:
            levels, target = core._levels(network, w, with_target=True)
            return heads.loss(levels, target, config.head, quantiles)

        with _threads(config.threads if device.type == "cpu" else None):
            networks, self.metrics = fit_members(lambda: core._network(panel[0]).to(device), window_loss, train, val,
                                                 config, progress=self.progress)
        core.networks = [network.cpu().eval() for network in networks]
        self.core, self.panel = core, panel
        return self

    # -- prediction --------------------------------------------------------------------------------
    def predict(self, h: int | None = None, panel: Any = None) -> list[Forecast]:
        """One Forecast per series of `panel` (default: the panel fitted on), in its order. A series the model
        has not seen is scaled by a transform fitted on its own history."""
        if self.core is None:
            raise RnnlabError("GlobalForecaster: call fit() or load() before predict()")
        c = self.core.fitted_config
        h = c.horizon if h is None else h
        if not isinstance(h, int | np.integer) or not 0 < h <= c.horizon:
            raise ConfigError(f"--horizon must be a number of steps from 1 to the trained {c.horizon} (got {h})")
        panel = self.panel if panel is None else as_panel(panel)
        known = {s.name: t for s, t in zip(self.panel, self.transforms)}
        windows, transforms = [], []
        for series in panel:
            transform = known.get(series.name) or TargetTransform(log=c.log, columns=series.columns).fit(
                series.values, c.scaler)
            try:
                values = transform.transform(series.values)
            except DataError as exc:
                raise DataError(f"series {series.name!r}: {exc.message}") from None
            needed = c.lookback if not self.core._profile else max(c.lookback, _reach(c, self.core._profile))
            if len(series) < needed:
                raise DataError(f"series {series.name!r} has {len(series)} points; this model reads {needed}")
            none = np.zeros((len(series), 0))
            windows.append(last_window(values, none, none, c.lookback, c.horizon, profile=self.core._profile))
            transforms.append(transform)
        batch = Windows.concat(windows)
        with torch.no_grad():
            members = np.stack([self.core._direct(net, batch)[:, :, :h] for net in self.core.networks])  # [M, S, Q, H, 1]
        combined = np.median(members, axis=0) if c.combine == "median" else members.mean(axis=0)
        return [from_quantiles(series.future_times(h), transform.inverse(q), c.quantiles, c.intervals,
                               series.columns, self.name)
                for series, transform, q in zip(panel, transforms, combined)]

    # -- persistence -------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        if self.core is None:
            raise RnnlabError("GlobalForecaster: call fit() before save()")
        directory = Path(directory)
        _io.make_dir(directory)
        values = np.concatenate([s.values[:, 0] for s in self.panel])
        lengths = np.array([len(s) for s in self.panel], dtype=np.int64)
        _io.save_tensors(directory / PANEL_FILE, {"values": torch.from_numpy(values),
                                                  "lengths": torch.from_numpy(lengths)})
        _io.write_json(directory / SCALER_FILE, {"targets": [t.to_dict() for t in self.transforms]})
        save_members(directory / MODEL_FILE, self.core.networks)
        _io.write_text(directory / "metrics.jsonl", "".join(json.dumps(m) + "\n" for m in self.metrics))
        _io.write_json(directory / CONFIG_FILE, {
            "format_version": FORMAT_VERSION, "kind": self.kind, "settings": self.core.fitted_config.to_dict(),
            "requested": self.config.to_dict(), "windows_per_series": self.windows_per_series,
            "auto": self.auto, "given": sorted(self.given),
            "series": None, "panel": [s.meta() for s in self.panel]})

    @classmethod
    def load(cls, directory: str | Path) -> GlobalForecaster:
        directory = Path(directory)
        config = read_config(directory)
        if config["kind"] != cls.kind:
            raise ModelDirError(f"{directory} holds a {config['kind']} model, not a global one")
        try:
            settings = ForecastConfig.from_dict(config["settings"])
            forecaster = cls(ForecastConfig.from_dict(config["requested"]),
                             windows_per_series=int(config["windows_per_series"]),
                             auto=bool(config.get("auto", False)), given=frozenset(config.get("given", ())))
            arrays = _io.load_tensors(directory / PANEL_FILE)
            values, lengths = arrays["values"].numpy().astype(np.float64), arrays["lengths"].numpy()
            ends = np.cumsum(lengths)
            forecaster.panel = [Series.from_meta(meta, {"values": values[end - n:end]})
                                for meta, n, end in zip(config["panel"], lengths, ends)]
            forecaster.transforms = [TargetTransform.from_dict(t)
                                     for t in _io.read_json(directory / SCALER_FILE)["targets"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelDirError(f"{directory}: the global model's files do not match ({exc})") from None
        core = RNNForecaster(settings)
        core.fitted_config, core.series = settings, forecaster.panel[0]
        core.networks = load_members(directory / MODEL_FILE, lambda: core._network(core.series), settings.ensemble)
        forecaster.core = core
        return forecaster


class LocalPanel:
    """A single-series forecaster (a baseline) applied to each series of a panel on its own."""

    def __init__(self, template: Any):
        self.template = template
        self.kind = template.kind
        self.fitted: list[Any] = []
        self.panel: list[Series] = []

    @property
    def name(self) -> str:
        return self.template.name

    @property
    def horizon(self) -> int | None:
        return self.template.horizon

    def clone(self) -> LocalPanel:
        return LocalPanel(self.template.clone())

    def fit(self, panel: Any) -> LocalPanel:
        self.panel = as_panel(panel)
        self.fitted = []
        for series in self.panel:
            try:
                self.fitted.append(self.template.clone().fit(series))
            except DataError as exc:
                raise DataError(f"series {series.name!r}: {exc.message}") from None
        return self

    def predict(self, h: int | None = None, panel: Any = None) -> list[Forecast]:
        if panel is None:
            return [model.predict(h) for model in self.fitted]
        return [self.template.clone().fit(series).predict(h) for series in as_panel(panel)]


def _reach(config: ForecastConfig, profile: tuple[int, int]) -> int:
    from rnnlab.forecasting.windows import profile_reach

    return profile_reach(config.lookback, config.horizon, *profile)


def panel_from_frame(frame: Any, *, id: str | None = None, time: str | None = None, target: str | None = None,
                     freq: str | None = None, season_length: int | None = None, fill: str = "error") -> list[Series]:
    """Long format (statsforecast's and neuralforecast's convention): one row per series and time, columns
    `unique_id, ds, y` found by name or named with id/time/target. `ds` may be dates or integer steps."""
    from rnnlab.forecasting.series import from_frame

    columns = [str(c) for c in frame.columns]
    frame = frame.copy()
    frame.columns = columns
    id = id or ("unique_id" if "unique_id" in columns else None)
    time = time or ("ds" if "ds" in columns else None)
    target = target or ("y" if "y" in columns else None)
    for flag, name in (("--id", id), ("--time", time), ("--target", target)):
        if name is None:
            raise DataError(f"long-format data needs {flag} (columns: {', '.join(columns)})")
        if name not in columns:
            raise DataError(f"{flag} column {name!r} not in the data (columns: {', '.join(columns)})")
    panel = []
    for key, rows in frame.groupby(id, sort=False):
        rows = rows.drop(columns=[id]).reset_index(drop=True)
        try:
            series = from_frame(rows, time=time, target=target, freq=freq, season_length=season_length, fill=fill,
                                name=str(key))
        except DataError as exc:
            raise DataError(f"series {key!r}: {exc.message}") from None
        panel.append(replace(series, source={**series.source, "id": id}))
    return as_panel(panel)
