"""Settings of the recurrent forecaster as data: one frozen, validated dataclass with a JSON round-trip.

It follows rnnlab.config (each error names the flag a user would type) and lives here rather than in
rnnlab/config.py only because that file belongs to the core; it can move there unchanged.
Derived values (the lookback when none is given, the validation size) are filled in at fit time and
stored resolved, so a saved model never depends on a default that might change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rnnlab.config import CELLS, JsonConfig, check_seed, flag_field, require, require_one_of

FORECAST_CELLS = (*CELLS, "rnn")  # "rnn" is rnn_tanh, the SimpleRNN of the tutorials
SCALERS = ("standard", "minmax", "robust", "none")
WINDOW_NORMS = ("none", "last", "mean", "standard")
HEADS = ("quantile", "gaussian")
COMBINES = ("median", "mean")


def parse_levels(text: str | tuple | list) -> tuple[int, ...]:
    """'80,95' -> (80, 95); every level an integer percentage strictly between 0 and 100."""
    from rnnlab.errors import ConfigError

    items = text.split(",") if isinstance(text, str) else list(text)
    levels = []
    for item in items:
        try:
            level = int(str(item).strip())
        except ValueError:
            raise ConfigError(f"--intervals must be integer percentages like 80,95 (got {item!r})") from None
        levels.append(level)
    levels = sorted(set(levels))
    require(bool(levels) and all(0 < x < 100 for x in levels), "--intervals",
          f"levels must lie strictly between 0 and 100 (got {text!r})")
    return tuple(levels)


@dataclass(frozen=True)
class ForecastConfig(JsonConfig):
    """The recurrent forecaster: transforms, network, head and training.

    Data flow (one window):  level history [L, D] -> log -> scaler (fitted on the training range) ->
    per-window normalisation -> differencing -> recurrent encoder -> direct head (H steps at once) or a
    one-step head rolled out recursively -> re-integrated -> inverse of every transform on output.
    """

    horizon: int = field(default=1, metadata=flag_field("--horizon"))
    lookback: int | None = field(default=None, metadata=flag_field("--lookback"))  # None: derived at fit
    # Seasons averaged into the season-profile input (windows.py); None: 2 when the season is longer than
    # the window (derived at fit), 0: off.
    season_profile: int | None = field(default=None, metadata=flag_field("--season-profile"))
    cell: str = field(default="lstm", metadata=flag_field("--cell"))
    hidden_size: int = field(default=32, metadata=flag_field("--hidden"))
    layers: int = field(default=1, metadata=flag_field("--layers"))
    dropout: float = field(default=0.0, metadata=flag_field("--dropout"))
    highway: bool = field(default=False, metadata=flag_field("--highway"))  # linear skip from inputs to outputs
    scaler: str = field(default="robust", metadata=flag_field("--scaler"))
    log: bool = field(default=False, metadata=flag_field("--log"))
    diff: tuple[int, ...] = field(default=(), metadata=flag_field("--diff"))
    window_norm: str = field(default="none", metadata=flag_field("--window-norm"))
    recursive: bool = field(default=False, metadata=flag_field("--recursive"))
    head: str = field(default="quantile", metadata=flag_field("--head"))
    intervals: tuple[int, ...] = field(default=(80, 95), metadata=flag_field("--intervals"))
    ensemble: int = field(default=1, metadata=flag_field("--ensemble"))
    combine: str = field(default="median", metadata=flag_field("--combine"))
    epochs: int | None = field(default=None, metadata=flag_field("--epochs"))  # None: derived at fit
    batch_size: int | None = field(default=None, metadata=flag_field("--batch-size"))  # None: derived at fit
    lr: float = field(default=3e-3, metadata=flag_field("--lr"))
    weight_decay: float = field(default=1e-2, metadata=flag_field("--weight-decay"))
    clip: float = field(default=1.0, metadata=flag_field("--clip"))
    patience: int | None = field(default=30, metadata=flag_field("--patience"))
    val_size: int | None = field(default=None, metadata=flag_field("--val-size"))  # None: derived at fit
    seed: int = field(default=0, metadata=flag_field("--seed"))
    samples: int = field(default=200, metadata=flag_field("--samples"))  # recursive mode: simulated paths
    checkpoint_every: int = field(default=10, metadata=flag_field("--checkpoint-every"))  # epochs
    device: str = field(default="auto", metadata=flag_field("--device"))
    threads: int | None = field(default=1, metadata=flag_field("--threads"))  # small networks run fastest on one


    def __post_init__(self) -> None:
        self.check_types()
        require(isinstance(self.horizon, int) and self.horizon >= 1, "--horizon",
              f"must be a positive number of steps (got {self.horizon})")
        require(self.lookback is None or self.lookback >= 1, "--lookback", f"must be at least 1 (got {self.lookback})")
        require(self.season_profile is None or self.season_profile >= 0, "--season-profile",
                f"must not be negative (got {self.season_profile})")
        require_one_of(self.cell, FORECAST_CELLS, "--cell")
        require(self.hidden_size >= 1, "--hidden", f"must be at least 1 (got {self.hidden_size})")
        require(self.layers >= 1, "--layers", f"must be at least 1 (got {self.layers})")
        require(0.0 <= self.dropout < 1.0, "--dropout", f"must be in [0, 1) (got {self.dropout})")
        require_one_of(self.scaler, SCALERS, "--scaler")
        require(all((isinstance(d, int) and d >= 1) or d == "season" for d in self.diff), "--diff",
              f"lags must be positive integers or 'season' (got {self.diff})")
        require_one_of(self.window_norm, WINDOW_NORMS, "--window-norm")
        require_one_of(self.head, HEADS, "--head")
        require(all(isinstance(x, int) and not isinstance(x, bool) for x in self.intervals), "--intervals",
              f"levels must be integer percentages (got {self.intervals})")
        require(bool(self.intervals) and all(0 < x < 100 for x in self.intervals), "--intervals",
              f"levels must lie strictly between 0 and 100 (got {self.intervals})")
        require(list(self.intervals) == sorted(set(self.intervals)), "--intervals", "must be increasing and distinct")
        require(self.ensemble >= 1, "--ensemble", f"must be at least 1 (got {self.ensemble})")
        require_one_of(self.combine, COMBINES, "--combine")
        require(self.epochs is None or self.epochs >= 1, "--epochs", f"must be at least 1 (got {self.epochs})")
        require(self.batch_size is None or self.batch_size >= 1, "--batch-size", f"must be at least 1 (got {self.batch_size})")
        require(self.lr > 0 and math.isfinite(self.lr), "--lr", f"must be positive (got {self.lr})")
        require(self.weight_decay >= 0, "--weight-decay", "must not be negative")
        require(self.clip >= 0, "--clip", "must not be negative (0 turns clipping off)")
        require(self.patience is None or self.patience >= 1, "--patience", "must be at least 1")
        require(self.val_size is None or self.val_size >= 0, "--val-size", "must not be negative")
        require(self.samples >= 10, "--samples", f"must be at least 10 (got {self.samples})")
        require(self.checkpoint_every >= 1, "--checkpoint-every", "must be at least 1")
        require(self.threads is None or self.threads >= 1, "--threads", "must be at least 1")
        check_seed(self.seed, "--seed")

    @property
    def quantiles(self) -> tuple[float, ...]:
        """The quantiles the head learns: the median and both ends of every interval, increasing."""
        qs = {0.5}
        for level in self.intervals:
            qs.add(round((1 - level / 100) / 2, 6))
            qs.add(round(1 - (1 - level / 100) / 2, 6))
        return tuple(sorted(qs))

    def lags(self, season_length: int) -> tuple[int, ...]:
        """The differencing lags with 'season' replaced by the series' season length."""
        return tuple(season_length if d == "season" else int(d) for d in self.diff)

    @property
    def network_cell(self) -> str:
        return "rnn_tanh" if self.cell == "rnn" else self.cell
