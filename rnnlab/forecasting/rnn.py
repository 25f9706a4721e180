"""RNNForecaster: the recurrent network behind the shared forecaster interface.

fit:     resolve the derived settings -> fit the transforms on the training range -> cut windows ->
         the last `val_size` points validate -> `fit.fit_members` trains the ensemble.
predict: transform the last `lookback` points -> each member's quantiles (direct head: all H steps at
         once; recursive: simulated paths) -> combine members (median or mean per quantile) -> invert.

Model directory:
    config.json                 settings (resolved), series description, format_version
    scaler.json                 target log/scaler and covariate scalers, fitted on the training range
    series.safetensors          the training series (so predict, plot and backtest need no --data)
    model.safetensors           member{i}.* weights of every ensemble member
    metrics.jsonl               per member and epoch: train/val loss, learning rate
    member-{m}/                 each member's training run: checkpoint, best weights, metrics (see fit.py)
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnlab import _io
from rnnlab.errors import ConfigError, DataError, ModelDirError, RnnlabError
from rnnlab.forecasting import heads
from rnnlab.forecasting.backtest import backtest_method
from rnnlab.forecasting.base import (
    CONFIG_FILE,
    SERIES_FILE,
    read_config,
    read_series,
    write_config,
    write_series,
)
from rnnlab.forecasting.config import ForecastConfig
from rnnlab.forecasting.fit import TrainingDivergedError, can_resume, fit_members, remove_members
from rnnlab.forecasting.forecast import Forecast, from_quantiles
from rnnlab.forecasting.series import Series, as_series
from rnnlab.forecasting.transforms import Scaler, TargetTransform, difference, window_stats
from rnnlab.forecasting.windows import Windows, last_window, make_windows, profile_reach
from rnnlab.models.forecaster import ForecastNetwork
from rnnlab.training import modeldir
from rnnlab.training.seeding import pick_device

MODEL_FILE = "model.safetensors"
SCALER_FILE = "scaler.json"
METRICS_FILE = "metrics.jsonl"
RUN_FILES = (CONFIG_FILE, SCALER_FILE, SERIES_FILE, METRICS_FILE, MODEL_FILE)  # what fit writes (and member-*/)


MAX_LOOKBACK = 192  # the default window never grows past this: a longer season reaches it as a profile
MAX_STEPS_PER_EPOCH = 32  # the default batch grows (up to 256 windows) rather than the steps of an epoch


def default_lookback(horizon: int, season_length: int, diff: tuple[int, ...] = ()) -> int:
    """A few seasons and at least two horizons, bounded, with room for the differencing:
    max(3m, 2H, 8) + sum(diff) while that is at most 192 steps; past that, two horizons (96 to 192 steps)
    + sum(diff). A recurrent encoder's cost grows with every step it reads (a weekly season of 336
    half-hours would make 1,008 of them), so such a season reaches the network as the season profile
    (windows.py) instead of being copied into the window."""
    base = max(3 * season_length, 2 * horizon, 8)
    if base > MAX_LOOKBACK:
        base = min(max(2 * horizon, 96), MAX_LOOKBACK)
    return base + sum(diff)


MAX_EPOCHS, STEP_BUDGET = 300, 2000


def default_epochs(windows: int, batch_size: int) -> int:
    """300 epochs, fewer when they would exceed about 2,000 optimiser steps (at least 30 epochs): early
    stopping ends most runs sooner, and a long series learns its shape in fewer passes."""
    steps = -(-max(windows, 1) // batch_size)
    return int(min(MAX_EPOCHS, max(30, STEP_BUDGET // steps)))


def default_batch_size(windows: int) -> int:
    """32 windows, or more (at most 256) when an epoch would otherwise take over 32 steps: on a long
    series the overlapping windows repeat one another, and a step costs little more at 256 than at 32."""
    return int(min(max(32, -(-windows // MAX_STEPS_PER_EPOCH)), 256))


def default_profile(length: int, lookback: int, steps: int, val: int, season: int, skip: int) -> int:
    """Seasons averaged into the season profile: 2 (or 1 when the series is short) when the season is longer
    than what the window reads after differencing, and the series leaves room for training windows."""
    if season <= 1 or season <= lookback - skip:
        return 0
    for count in (2, 1):
        first = max(lookback, profile_reach(lookback, steps, season, count))
        if length - val - steps - first >= max(steps, 16):
            return count
    return 0


class RNNForecaster:
    """A recurrent (LSTM/GRU/RNN) forecaster. Settings: see ForecastConfig (or pass them as keywords)."""

    kind = "rnn"
    backtest = backtest_method

    def __init__(self, config: ForecastConfig | None = None, *, progress: bool = False, **settings: Any):
        config = config or ForecastConfig()
        self.config = config.replace(**settings) if settings else config
        self.progress = progress
        self.fitted_config: ForecastConfig | None = None
        self.series: Series | None = None
        self.transform: TargetTransform | None = None
        self.past_scaler: Scaler | None = None
        self.future_scaler: Scaler | None = None
        self.networks: list[ForecastNetwork] = []
        self.metrics: list[dict] = []

    # -- identity ----------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return f"rnnlab_{self.config.cell}"

    @property
    def horizon(self) -> int:
        return self.config.horizon

    def clone(self) -> RNNForecaster:
        return RNNForecaster(self.config, progress=self.progress)

    def with_horizon(self, horizon: int) -> RNNForecaster:
        if horizon != self.config.horizon:
            self.config = self.config.replace(horizon=horizon)
        return self

    def __repr__(self) -> str:
        return f"RNNForecaster({self.config!r})"

    # -- fitting -----------------------------------------------------------------------------------
    def resolve(self, series: Series) -> ForecastConfig:
        """Fill in the derived settings for this series and check that it is long enough."""
        c = self.config
        lags = c.lags(series.season_length)
        lookback = c.lookback or default_lookback(c.horizon, series.season_length, lags)
        if lookback <= sum(lags):
            raise ConfigError(f"--lookback {lookback} leaves nothing after --diff {','.join(map(str, lags))}: "
                              f"it must exceed {sum(lags)}")
        if lookback - sum(lags) < c.patch:
            raise ConfigError(f"--patch {c.patch} is longer than the {lookback - sum(lags)} steps the encoder "
                              f"reads (--lookback {lookback}{' after --diff' if lags else ''})")
        if len(series) < lookback + c.horizon:
            raise DataError(f"the series has {len(series)} points, fewer than --lookback {lookback} + "
                            f"--horizon {c.horizon} = {lookback + c.horizon}")
        if c.recursive and series.n_past:
            raise ConfigError("--recursive cannot use past covariates (--covariates): their future values "
                              "are unknown; pass them as --future-covariates if they are known ahead")
        steps = 1 if c.recursive else c.horizon
        val = c.horizon if c.val_size is None else c.val_size
        if len(series) - val < lookback + steps:  # no room for a training window: validate on nothing
            val = 0
        profile = c.season_profile
        if profile is None:
            profile = 0 if c.recursive else default_profile(len(series), lookback, steps, val,
                                                            series.season_length, sum(lags))
        elif profile:
            if c.recursive:
                raise ConfigError("--season-profile needs the direct head: drop --recursive (or pass "
                                  "--season-profile 0)")
            if series.season_length <= 1:
                raise ConfigError("--season-profile needs a season: pass --season-length")
            first = max(lookback, profile_reach(lookback, steps, series.season_length, profile))
            if len(series) < first + steps:
                raise DataError(f"the series has {len(series)} points, fewer than the {first + steps} that "
                                f"--season-profile {profile} (season {series.season_length}) needs")
            if len(series) - val < first + steps:
                val = 0
        first = max(lookback, profile_reach(lookback, steps, series.season_length, profile) if profile else 0)
        windows = len(series) - steps - first + 1 - val  # training windows
        batch = default_batch_size(windows) if c.batch_size is None else c.batch_size
        epochs = default_epochs(windows, batch) if c.epochs is None else c.epochs
        return c.replace(lookback=lookback, val_size=val, diff=lags, season_profile=profile, batch_size=batch,
                         epochs=epochs)

    @property
    def _profile(self) -> tuple[int, int] | None:
        """(season, K) of the season profile when the fitted model reads one."""
        c = self.fitted_config
        return (self.series.season_length, c.season_profile) if c.season_profile else None

    def fit(self, series: Any, *, directory: str | Path | None = None, resume: bool = False,
            callback=None) -> RNNForecaster:
        """Train on `series`. With `directory`, checkpoints go there as training runs (and `resume=True`
        continues the run stored there); the finished model is saved there too."""
        series = as_series(series)
        config = self.resolve(series)
        self.fitted_config, self.series = config, series
        self.transform = TargetTransform(log=config.log, columns=series.columns).fit(series.values, config.scaler)
        self.past_scaler = Scaler(config.scaler).fit(series.past_covariates) if series.n_past else None
        known = series.future_covariates
        self.future_scaler = Scaler(config.scaler).fit(known[: len(series)]) if known is not None else None
        values, past, future = self._arrays(series, 0)
        steps = 1 if config.recursive else config.horizon
        windows = make_windows(values, past, future, config.lookback, steps, profile=self._profile)
        origins = np.arange(len(series) - steps - len(windows) + 1, len(series) - steps + 1)
        # The last val_size points validate: every window whose target reaches into them (val_size windows,
        # not one, so early stopping follows an average), and no training window's target touches them.
        in_val = origins > len(series) - config.val_size - steps if config.val_size else np.zeros(len(origins), bool)
        train = windows.subset(torch.from_numpy(np.flatnonzero(~in_val)))
        val = windows.subset(torch.from_numpy(np.flatnonzero(in_val))) if in_val.any() else None
        if directory is not None:
            directory = Path(directory)
            if not resume:
                self._save_description(directory)
        device = pick_device(config.device)
        train, val = train.to(device), (val.to(device) if val is not None else None)
        quantiles = torch.tensor(config.quantiles, dtype=torch.float32, device=device)

        def window_loss(network: ForecastNetwork, w: Windows) -> torch.Tensor:
            levels, target = self._levels(network, w, with_target=True)
            return heads.loss(levels, target, config.head, quantiles)

        def make_network() -> ForecastNetwork:
            return self._network(series).to(device)

        try:
            with _threads(config.threads if device.type == "cpu" else None):
                networks, self.metrics = fit_members(make_network, window_loss, train, val, config,
                                                     directory=directory, resume=resume, progress=self.progress,
                                                     callback=callback)
        except TrainingDivergedError:
            if directory is not None and not resume:  # a fresh run leaves no untrained model behind
                remove_members(directory)
                modeldir.remove_files(directory, RUN_FILES)
            raise
        self.networks = [network.cpu().eval() for network in networks]
        if directory is not None:
            self.save(directory)
        return self

    @classmethod
    def resume(cls, directory: str | Path, *, progress: bool = False, callback=None) -> RNNForecaster:
        """Continue the interrupted training stored in `directory` (same data, same settings)."""
        directory = Path(directory)
        config = read_config(directory)
        if config["kind"] != cls.kind:
            raise ModelDirError(f"{directory} holds a {config['kind']} model; only rnn training resumes")
        if not can_resume(directory):
            raise ModelDirError(f"{directory} has no training state to resume from "
                                f"(member-*/training_state.safetensors)")
        settings = ForecastConfig.from_dict(config["settings"])
        original = ForecastConfig.from_dict(config.get("requested", config["settings"]))
        forecaster = cls(original, progress=progress)
        series = read_series(directory, config["series"])
        if forecaster.resolve(series) != settings:
            raise ModelDirError(f"{directory}: the stored settings no longer resolve the same way")
        return forecaster.fit(series, directory=directory, resume=True, callback=callback)

    def _network(self, series: Series) -> ForecastNetwork:
        c = self.fitted_config
        steps = 1 if c.recursive else c.horizon
        profile = series.dim if c.season_profile else 0  # the profile: one more channel per target column
        return ForecastNetwork(input_size=series.dim + series.n_past + series.n_future + profile,
                               target_dim=series.dim, horizon=steps,
                               outputs=heads.outputs_per_step(c.head, c.quantiles),
                               future_size=series.n_future + profile, cell=c.network_cell, hidden_size=c.hidden_size,
                               layers=c.layers, dropout=c.dropout, patch=c.patch,
                               highway=c.lookback - sum(c.diff) if c.highway else 0,
                               location=heads.location_outputs(c.head, c.quantiles))

    def _arrays(self, series: Series, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Transformed target [T, D], past covariates [T, P] and future covariates [T + steps, C]."""
        values = self.transform.transform(series.values)
        past = self.past_scaler.transform(series.past_covariates) if self.past_scaler else \
            np.zeros((len(series), 0))
        future = series.future_matrix(steps)
        if self.future_scaler is not None:
            known = self.future_scaler.center.shape[0]
            future = np.concatenate([self.future_scaler.transform(future[:, :known]), future[:, known:]], axis=1)
        return values, past, future

    def _levels(self, network: ForecastNetwork, w: Windows, with_target: bool = False):
        """Normalise a batch of windows, run the network, integrate back to levels (normalised units)."""
        c = self.fitted_config
        loc, scale = window_stats(w.history, c.window_norm)  # [B, 1, D] each
        history = (w.history - loc) / scale  # [B, L, D]
        skip = sum(c.diff)
        inputs = [difference(history, c.diff), w.past[:, skip:], w.future_in[:, skip:]]
        future = w.future_out
        if w.profile is not None:  # the season profile, normalised like the history it summarises
            profile = (w.profile - loc) / scale  # [B, L + H, D]
            lookback = history.shape[1]
            inputs.append(profile[:, skip:lookback])
            future = torch.cat([future, profile[:, lookback:]], dim=2)  # [B, H, C + D]
        levels = heads.to_levels(network(torch.cat(inputs, dim=2), future), c.head, history, c.diff)  # [B, H, D, K]
        if w.profile is not None and not c.diff:
            # Without differencing the head forecasts the departure from the profile: a network at zero is
            # a smoothed seasonal naive, not a flat line.
            base = profile[:, lookback:].unsqueeze(-1)  # [B, H, D, 1]
            levels = levels + base * network.location
        if with_target:
            return levels, (w.target - loc) / scale
        return levels, loc, scale

    def members(self) -> list[RNNForecaster]:
        """Each ensemble member as a fitted forecaster of its own (sharing the fitted transforms): member i
        is exactly the model `--ensemble 1 --seed SEED+i` trains."""
        out = []
        for i, network in enumerate(self.networks):
            member = copy.copy(self)
            member.networks = [network]
            member.fitted_config = self.fitted_config.replace(ensemble=1, seed=self.fitted_config.seed + i)
            member.config = self.config.replace(ensemble=1, seed=self.config.seed + i)
            out.append(member)
        return out

    # -- prediction --------------------------------------------------------------------------------
    def predict(self, h: int | None = None, series: Any = None) -> Forecast:
        """Forecast h steps (default: the fitted horizon) after `series` (default: the training series)."""
        if not self.networks:
            raise RnnlabError("RNNForecaster: call fit() or load() before predict()")
        c = self.fitted_config
        h = c.horizon if h is None else h
        if not isinstance(h, int | np.integer) or h <= 0:
            raise ConfigError(f"--horizon must be a positive number of steps (got {h})")
        if not c.recursive and h > c.horizon:
            raise ConfigError(f"--horizon {h} is longer than the {c.horizon} steps this model's direct head was "
                              "trained for: retrain with a longer --horizon, or with --recursive")
        history = self.series if series is None else self._compatible(as_series(series))
        needed = max(c.lookback, profile_reach(c.lookback, c.horizon, *self._profile) if self._profile else 0)
        if len(history) < needed:
            raise DataError(f"the series has {len(history)} points; this model reads {needed} (--lookback "
                            f"{c.lookback}{', and the season profile' if needed > c.lookback else ''})")
        steps = h if c.recursive else c.horizon
        values, past, future = self._arrays(history, steps)
        with torch.no_grad(), _threads(c.threads):
            if c.recursive:
                members = [self._simulate(net, values, future, h, i) for i, net in enumerate(self.networks)]
            else:
                w = last_window(values, past, future, c.lookback, c.horizon, profile=self._profile)
                members = [self._direct(net, w)[0, :, :h] for net in self.networks]
        stacked = np.stack(members)  # [M, Q, H, D]
        combined = np.median(stacked, axis=0) if c.combine == "median" else stacked.mean(axis=0)
        quantiles = self.transform.inverse(combined)
        return from_quantiles(history.future_times(h), quantiles, c.quantiles, c.intervals, history.columns,
                              self.name)

    def _direct(self, network: ForecastNetwork, w: Windows) -> np.ndarray:
        c = self.fitted_config
        levels, loc, scale = self._levels(network, w)
        q = heads.to_quantiles(levels, c.head, c.quantiles)  # [B, H, D, Q]
        q = q * scale.unsqueeze(-1) + loc.unsqueeze(-1)
        return q.permute(0, 3, 1, 2).double().numpy()  # [B, Q, H, D]

    def _simulate(self, network: ForecastNetwork, values: np.ndarray, future: np.ndarray, h: int,
                  member: int) -> np.ndarray:
        """Recursive mode: roll `samples` paths forward one step at a time, each step drawn from the head."""
        c = self.fitted_config
        generator = torch.Generator().manual_seed(c.seed + member + 7919)
        # One buffer [S, L + h, D] filled step by step (no concatenation per step): the window of step k
        # is the view paths[:, k : k + L].
        paths = torch.empty(c.samples, c.lookback + h, values.shape[1])
        paths[:, :c.lookback] = torch.as_tensor(values[-c.lookback:], dtype=torch.float32)
        future = torch.as_tensor(future, dtype=torch.float32)
        end = len(values)
        no_past = torch.zeros(c.samples, c.lookback, 0)
        no_target = torch.zeros(c.samples, 0, paths.shape[2])
        for k in range(h):
            window = Windows(history=paths[:, k:k + c.lookback], past=no_past,
                             future_in=future[end - c.lookback + k:end + k].expand(c.samples, -1, -1),
                             future_out=future[end + k:end + k + 1].expand(c.samples, -1, -1),
                             target=no_target)
            levels, loc, scale = self._levels(network, window)
            draw = heads.sample(levels, c.head, c.quantiles, generator)  # [S, 1, D]
            paths[:, c.lookback + k:c.lookback + k + 1] = draw * scale + loc
        simulated = paths[:, c.lookback:].double()  # [S, h, D]
        probs = torch.tensor(c.quantiles, dtype=torch.float64)
        return torch.quantile(simulated, probs, dim=0).numpy()  # [Q, h, D]

    def _compatible(self, series: Series) -> Series:
        reference = self.series
        if series.dim != reference.dim:
            raise DataError(f"the model forecasts {reference.dim} column(s) ({', '.join(reference.columns)}); "
                            f"the data has {series.dim}")
        if series.n_past != reference.n_past or series.n_future != reference.n_future:
            raise DataError("the data's covariates differ from the ones the model was trained with "
                            f"(past: {', '.join(reference.past_covariate_names) or 'none'}; future: "
                            f"{', '.join(reference.future_covariate_names + reference.calendar) or 'none'})")
        return series

    # -- persistence -------------------------------------------------------------------------------
    def _save_description(self, directory: Path) -> None:
        _io.write_json(directory / SCALER_FILE, {
            "target": self.transform.to_dict(),
            "past": self.past_scaler.to_dict() if self.past_scaler else None,
            "future": self.future_scaler.to_dict() if self.future_scaler else None})
        write_series(directory, self.series)
        write_config(directory, self.kind, self.fitted_config.to_dict(), self.series,
                     requested=self.config.to_dict())

    def save(self, directory: str | Path) -> None:
        if not self.networks:
            raise RnnlabError("RNNForecaster: call fit() before save()")
        directory = Path(directory)
        self._save_description(directory)
        save_members(directory / MODEL_FILE, self.networks)
        if self.metrics:
            import json

            _io.write_text(directory / METRICS_FILE, "".join(json.dumps(m) + "\n" for m in self.metrics))

    @classmethod
    def load(cls, directory: str | Path) -> RNNForecaster:
        directory = Path(directory)
        config = read_config(directory)
        if config["kind"] != cls.kind:
            raise ModelDirError(f"{directory} holds a {config['kind']} model, not an rnn")
        settings = ForecastConfig.from_dict(config["settings"])
        forecaster = cls(ForecastConfig.from_dict(config.get("requested", config["settings"])))
        forecaster.fitted_config = settings
        forecaster.series = read_series(directory, config["series"])
        scalers = _io.read_json(directory / SCALER_FILE)
        try:
            forecaster.transform = TargetTransform.from_dict(scalers["target"])
            forecaster.past_scaler = Scaler.from_dict(scalers["past"]) if scalers.get("past") else None
            forecaster.future_scaler = Scaler.from_dict(scalers["future"]) if scalers.get("future") else None
        except (KeyError, TypeError) as exc:
            raise ModelDirError(f"{directory / SCALER_FILE} is malformed ({exc})") from None
        forecaster.networks = load_members(directory / MODEL_FILE, lambda: forecaster._network(forecaster.series),
                                           settings.ensemble)
        return forecaster


def save_members(path: Path, networks: list[ForecastNetwork]) -> None:
    """Every ensemble member's weights in one safetensors file, as member{i}.<name>."""
    tensors = {f"member{i}.{k}": v for i, net in enumerate(networks) for k, v in net.state_dict().items()}
    _io.save_tensors(path, tensors, metadata={"members": str(len(networks))})


def load_members(path: Path, make_network, count: int) -> list[ForecastNetwork]:
    """The `count` members saved by `save_members`, each checked against a freshly built network's shapes."""
    tensors = _io.load_tensors(path)
    networks = []
    for member in range(count):
        prefix = f"member{member}."
        weights = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        network = make_network()
        expected = network.state_dict()
        if set(weights) != set(expected) or any(weights[k].shape != expected[k].shape for k in expected):
            raise ModelDirError(f"{path} does not match config.json (member {member})")
        network.load_state_dict(weights)
        networks.append(network.eval())
    return networks


@contextmanager
def _threads(count: int | None):
    """Run with `count` torch threads, then restore: tiny recurrent networks lose time to thread
    hand-offs (ten times slower on a busy two-core machine), so training defaults to one."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


