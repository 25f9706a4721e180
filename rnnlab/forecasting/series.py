"""The one data type every forecaster reads: a regular, gap-free numeric `Series` with covariates.

Loading is where every data problem becomes a one-line `DataError` naming the column, the time and the
flag that fixes it; past that point the numbers are float64, finite and on a regular time grid.

    time  ->  index [T]            (DatetimeIndex with a frequency, or a RangeIndex)
    target    values [T, D]        (D >= 1 columns: multivariate targets allowed)
    past covariates      [T, P]    (known only up to the last observation)
    future covariates    [T + F, C] (known ahead: rows past T are the F known future steps)
    calendar             names      (month, dayofweek, ...: derived from the index for any horizon)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.errors import ConfigError, DataError, MissingExtraError

try:
    import pandas as pd
except ImportError as _exc:  # every forecasting module reaches pandas through here first
    raise MissingExtraError("pandas", "forecasting") from _exc

FILLS = ("error", "interpolate", "ffill")

# name -> (period, how to read it from a DatetimeIndex); encoded as a (sin, cos) pair so December sits
# next to January.
CALENDAR = {
    "month": (12, lambda ix: ix.month - 1),
    "quarter": (4, lambda ix: ix.quarter - 1),
    "dayofweek": (7, lambda ix: ix.dayofweek),
    "day": (31, lambda ix: ix.day - 1),
    "dayofyear": (366, lambda ix: ix.dayofyear - 1),
    "weekofyear": (53, lambda ix: ix.isocalendar().week.to_numpy() - 1),
    "hour": (24, lambda ix: ix.hour),
    "minute": (60, lambda ix: ix.minute),
}


def format_time(stamp: Any) -> str:
    """A time stamp as people write it: 2020-01-31, or 2020-01-31 12:00 when it has a time of day."""
    if isinstance(stamp, pd.Timestamp):
        return str(stamp.date()) if stamp == stamp.normalize() else stamp.strftime("%Y-%m-%d %H:%M:%S")
    return str(stamp)


def season_length_of(freq: str | None) -> int:
    """The usual season for a pandas frequency: 12 for months, 4 quarters, 7 days, 24 hours; else 1."""
    if not freq:
        return 1
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        return 1
    if offset.n != 1:
        return 1
    code = offset.rule_code.split("-")[0].upper()
    table = {"Y": 1, "YS": 1, "A": 1, "AS": 1, "BY": 1, "BYS": 1, "Q": 4, "QS": 4, "BQ": 4, "BQS": 4,
             "M": 12, "MS": 12, "ME": 12, "BM": 12, "BMS": 12, "BME": 12, "SM": 24, "SMS": 24,
             "W": 52, "D": 7, "B": 5, "C": 5, "H": 24, "BH": 24, "T": 60, "MIN": 60, "S": 60}
    return table.get(code, 1)


def calendar_matrix(index: pd.Index, names: tuple[str, ...]) -> np.ndarray:
    """[len(index), 2 * len(names)] cyclic encodings (sin, cos) of the named calendar features."""
    if not names:
        return np.zeros((len(index), 0))
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError("--calendar needs a time column with dates (--time COL)")
    columns = []
    for name in names:
        period, read = CALENDAR[name]
        angle = 2 * math.pi * np.asarray(read(index), dtype=np.float64) / period
        columns += [np.sin(angle), np.cos(angle)]
    return np.stack(columns, axis=1)


def check_calendar(names: tuple[str, ...]) -> tuple[str, ...]:
    for name in names:
        if name not in CALENDAR:
            raise ConfigError(f"--calendar: unknown feature {name!r} (known: {', '.join(CALENDAR)})")
    return tuple(names)


def future_index(index: pd.Index, freq: str | None, steps: int) -> pd.Index:
    """The `steps` time stamps that follow `index` on its grid."""
    if isinstance(index, pd.DatetimeIndex):
        return pd.date_range(index[-1], periods=steps + 1, freq=freq)[1:]
    step = index.step if isinstance(index, pd.RangeIndex) else 1
    start = int(index[-1]) + step
    return pd.RangeIndex(start, start + steps * step, step)


@dataclass(frozen=True, eq=False)
class Series:
    """A regular numeric time series with optional covariates. Build it with the `from_*` functions."""

    values: np.ndarray  # [T, D] float64, finite
    index: pd.Index  # [T]
    columns: tuple[str, ...] = ("y",)
    freq: str | None = None
    season_length: int = 1
    past_covariates: np.ndarray | None = None  # [T, P]
    past_covariate_names: tuple[str, ...] = ()
    future_covariates: np.ndarray | None = None  # [T + F, C]: rows past T are known future values
    future_covariate_names: tuple[str, ...] = ()
    calendar: tuple[str, ...] = ()
    name: str = "series"
    source: dict = field(default_factory=dict)  # how it was loaded: lets `predict --data` read alike

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        object.__setattr__(self, "values", values)
        if len(self.index) != len(values):
            raise DataError(f"index has {len(self.index)} entries but the series {len(values)}")
        if len(self.columns) != values.shape[1]:
            raise DataError(f"{len(self.columns)} column names for {values.shape[1]} target columns")
        if self.season_length < 1:
            raise ConfigError(f"--season-length must be at least 1 (got {self.season_length})")
        if self.past_covariates is not None and len(self.past_covariates) != len(values):
            raise DataError("past covariates must have one row per observation")
        if self.future_covariates is not None and len(self.future_covariates) < len(values):
            raise DataError("future covariates must cover at least every observation")

    # -- shape --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.values)

    @property
    def dim(self) -> int:
        return self.values.shape[1]

    @property
    def n_past(self) -> int:
        return 0 if self.past_covariates is None else self.past_covariates.shape[1]

    @property
    def n_future(self) -> int:
        known = 0 if self.future_covariates is None else self.future_covariates.shape[1]
        return known + 2 * len(self.calendar)

    @property
    def future_known(self) -> int:
        """How many steps past the end the future covariates are known (unbounded for calendar only)."""
        if self.future_covariates is None:
            return 10**9
        return len(self.future_covariates) - len(self)

    def until(self, n: int) -> Series:
        """The first n observations; known-future covariates stay, since they are known in advance."""
        if not 0 < n <= len(self):
            raise DataError(f"cannot cut a series of {len(self)} at {n}")
        return replace(self, values=self.values[:n], index=self.index[:n],
                       past_covariates=None if self.past_covariates is None else self.past_covariates[:n])

    def tail(self, n: int) -> Series:
        """The last n observations (with their covariates), e.g. the history a model conditions on."""
        n = min(n, len(self))
        start = len(self) - n
        return replace(self, values=self.values[start:], index=self.index[start:],
                       past_covariates=None if self.past_covariates is None else self.past_covariates[start:],
                       future_covariates=None if self.future_covariates is None else self.future_covariates[start:])

    def future_times(self, steps: int) -> pd.Index:
        return future_index(self.index, self.freq, steps)

    def future_matrix(self, steps: int) -> np.ndarray:
        """[T + steps, C] known-future covariates and calendar encodings for the observations and `steps`
        more; a clear error when the known values stop before that."""
        parts = []
        if self.future_covariates is not None:
            if steps > self.future_known:
                last = self.future_times(max(self.future_known, 1))[-1] if self.future_known else self.index[-1]
                raise DataError(
                    f"future covariates ({', '.join(self.future_covariate_names)}) are known up to "
                    f"{format_time(last)} but a forecast of {steps} steps needs them up to "
                    f"{format_time(self.future_times(steps)[-1])}")
            parts.append(self.future_covariates[: len(self) + steps])
        if self.calendar:
            index = self.index.append(self.future_times(steps)) if steps else self.index
            parts.append(calendar_matrix(index, self.calendar))
        if not parts:
            return np.zeros((len(self) + steps, 0))
        return np.concatenate(parts, axis=1)

    def with_future_covariates(self, future: np.ndarray, names: tuple[str, ...] | None = None) -> Series:
        """Attach known-future covariates [T + F, C] (for instance to predict further than the data held)."""
        future = _finite_block(future, names or self.future_covariate_names, "future covariate")
        return replace(self, future_covariates=future,
                       future_covariate_names=tuple(names or self.future_covariate_names
                                                    or [f"f{i}" for i in range(future.shape[1])]))

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.values, index=self.index, columns=list(self.columns))
        frame.index.name = self.source.get("time") or "time"
        return frame

    # -- persistence (safetensors for numbers, JSON for the rest) -----------------------------------
    def meta(self) -> dict[str, Any]:
        start = self.index[0]
        return {
            "name": self.name, "columns": list(self.columns), "freq": self.freq,
            "season_length": self.season_length, "length": len(self),
            "start": start.isoformat() if isinstance(start, pd.Timestamp) else int(start),
            "step": None if isinstance(self.index, pd.DatetimeIndex) else _int_step(self.index),
            "past_covariate_names": list(self.past_covariate_names),
            "future_covariate_names": list(self.future_covariate_names),
            "calendar": list(self.calendar), "source": self.source,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"values": self.values}
        if self.past_covariates is not None:
            out["past_covariates"] = np.asarray(self.past_covariates, dtype=np.float64)
        if self.future_covariates is not None:
            out["future_covariates"] = np.asarray(self.future_covariates, dtype=np.float64)
        return out

    @classmethod
    def from_meta(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Series:
        length = int(meta["length"])
        if meta.get("step") is None:
            index = pd.date_range(pd.Timestamp(meta["start"]), periods=length, freq=meta["freq"])
        else:
            start, step = int(meta["start"]), int(meta["step"])
            index = pd.RangeIndex(start, start + length * step, step)
        return cls(values=arrays["values"], index=index, columns=tuple(meta["columns"]), freq=meta["freq"],
                   season_length=int(meta["season_length"]),
                   past_covariates=arrays.get("past_covariates"),
                   past_covariate_names=tuple(meta["past_covariate_names"]),
                   future_covariates=arrays.get("future_covariates"),
                   future_covariate_names=tuple(meta["future_covariate_names"]),
                   calendar=tuple(meta["calendar"]), name=meta.get("name", "series"),
                   source=dict(meta.get("source") or {}))


def _int_step(index: pd.Index) -> int:
    if isinstance(index, pd.RangeIndex):
        return index.step
    return int(index[1] - index[0]) if len(index) > 1 else 1


def _finite_block(block: Any, names: tuple[str, ...], what: str) -> np.ndarray:
    try:
        array = np.asarray(block, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} values must be numeric ({exc})") from None
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise DataError(f"{what} values must be 1-D or 2-D (got shape {array.shape})")
    if not np.isfinite(array).all():
        row, col = np.argwhere(~np.isfinite(array))[0]
        label = names[col] if col < len(names) else f"column {col}"
        raise DataError(f"{what} {label!r} has a missing or infinite value at step {row}")
    return array


# -- building a Series ------------------------------------------------------------------------------
def as_series(data: Any, season_length: int | None = None) -> Series:
    """Accept a Series, a NumPy array [T] or [T, D], or a pandas Series/DataFrame (index as time)."""
    if isinstance(data, Series):
        return data
    if isinstance(data, pd.Series):
        data = data.to_frame(name=str(data.name) if data.name is not None else "y")
    if isinstance(data, pd.DataFrame):
        frame = data.reset_index()
        time = str(frame.columns[0]) if isinstance(data.index, pd.DatetimeIndex) else None
        if time is None:
            frame = data.copy()
        frame.columns = [str(c) for c in frame.columns]
        targets = [c for c in frame.columns if c != time]
        return from_frame(frame, time=time, target=targets, season_length=season_length)
    return from_array(data, season_length=season_length)


def from_array(values: Any, *, start: Any = None, freq: str | None = None, season_length: int | None = None,
               columns: tuple[str, ...] | None = None, past_covariates: Any = None,
               future_covariates: Any = None, calendar: tuple[str, ...] = (), fill: str = "error",
               name: str = "array") -> Series:
    """A Series from a NumPy array [T] or [T, D]. `start` + `freq` give it dates; else steps 0..T-1."""
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("the series holds a non-numeric value") from None
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0:
        raise DataError(f"a series must be a non-empty 1-D or 2-D array (got shape {array.shape})")
    cols = tuple(columns) if columns else (("y",) if array.shape[1] == 1 else
                                           tuple(f"y{i}" for i in range(array.shape[1])))
    if start is not None:
        if freq is None:
            raise ConfigError("--freq is needed with a start date")
        index: pd.Index = pd.date_range(pd.Timestamp(start), periods=len(array), freq=freq)
        freq = index.freqstr
    else:
        index = pd.RangeIndex(len(array))
    frame = pd.DataFrame(array, columns=list(cols))
    past = _block_frame(past_covariates, len(array), "p")
    fut = _block_frame(future_covariates, None, "f")
    return _assemble(frame, index, cols, past, fut, freq, season_length, check_calendar(tuple(calendar)),
                     fill, name, {})


def _block_frame(block: Any, length: int | None, prefix: str) -> pd.DataFrame | None:
    if block is None:
        return None
    if isinstance(block, pd.DataFrame):
        return block.reset_index(drop=True).apply(pd.to_numeric, errors="coerce")
    array = np.asarray(block, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if length is not None and len(array) != length:
        raise DataError(f"past covariates have {len(array)} rows for a series of {length}")
    return pd.DataFrame(array, columns=[f"{prefix}{i}" for i in range(array.shape[1])])


def split_names(text: str | list | tuple | None) -> tuple[str, ...]:
    if text is None:
        return ()
    if isinstance(text, str):
        return tuple(part.strip() for part in text.split(",") if part.strip())
    return tuple(text)


def read_csv(path: str | Path, **options: Any) -> Series:
    """Read a CSV with pandas and build a Series (see `from_frame` for the options)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    options.setdefault("name", path.stem)
    return from_frame(frame, **options)


def from_frame(frame: pd.DataFrame, *, time: str | None = None, target: Any = None, covariates: Any = None,
               future_covariates: Any = None, calendar: Any = (), fill: str = "error", freq: str | None = None,
               season_length: int | None = None, name: str = "series") -> Series:
    """A Series from a DataFrame with a time column and value columns.

    Rows past the last observed target that hold future covariates become known-future steps.
    Irregular or duplicated time stamps are an error unless `freq` resamples (mean per slot).
    """
    if fill not in FILLS:
        raise ConfigError(f"--fill must be one of {', '.join(FILLS)} (got {fill!r})")
    calendar = check_calendar(split_names(calendar))
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    if frame.empty:
        raise DataError("the data has no rows")
    past_names, future_names = split_names(covariates), split_names(future_covariates)
    if time is not None and time not in frame.columns:
        raise DataError(f"time column {time!r} not in the data (columns: {', '.join(frame.columns)})")
    targets = split_names(target)
    if not targets:
        candidates = [c for c in frame.columns if c != time and c not in past_names and c not in future_names
                      and pd.api.types.is_numeric_dtype(frame[c])]
        if len(candidates) != 1:
            raise DataError(f"pick the value column(s) with --target (columns: {', '.join(frame.columns)})")
        targets = tuple(candidates)
    for kind, names in (("target", targets), ("covariate", past_names), ("future covariate", future_names)):
        for col in names:
            if col not in frame.columns:
                raise DataError(f"{kind} column {col!r} not in the data (columns: {', '.join(frame.columns)})")
    source = {"time": time, "target": list(targets), "covariates": list(past_names),
              "future_covariates": list(future_names), "calendar": list(calendar), "fill": fill, "freq": freq,
              "season_length": season_length}
    numeric = {col: _numeric_column(frame, col).to_numpy() for col in dict.fromkeys(targets + past_names + future_names)}

    if time is None:
        index: pd.Index = pd.RangeIndex(len(frame))
        if freq is not None:
            raise ConfigError("--freq needs a time column (--time COL)")
    else:
        index = _time_index(frame[time], time)
    data = pd.DataFrame(numeric, index=index)
    if time is not None:
        data, freq = _regularise(data, time, freq)
        index = data.index
    if calendar and not isinstance(index, pd.DatetimeIndex):
        raise DataError("--calendar needs a time column with dates (--time COL)")

    # Trailing rows with no target but known future covariates are the known future.
    observed = data[list(targets)].notna().any(axis=1).to_numpy()
    if not observed.any():
        raise DataError(f"target column(s) {', '.join(targets)} hold no values")
    last = int(np.flatnonzero(observed)[-1]) + 1
    if future_names and last < len(data):
        known = data[list(future_names)].iloc[last:].notna().all(axis=1).to_numpy()
        extra = int(np.argmin(known)) if not known.all() else len(known)
    else:
        last, extra = len(data), 0
    target_frame = data[list(targets)].iloc[:last]
    past = data[list(past_names)].iloc[:last] if past_names else None
    fut = data[list(future_names)].iloc[: last + extra] if future_names else None
    return _assemble(target_frame.reset_index(drop=True), index[:last], targets,
                     None if past is None else past.reset_index(drop=True),
                     None if fut is None else fut.reset_index(drop=True),
                     freq, season_length, calendar, fill, name, source)


def _numeric_column(frame: pd.DataFrame, col: str) -> pd.Series:
    raw = frame[col]
    if pd.api.types.is_bool_dtype(raw):
        return raw.astype(np.float64)
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"column {col!r} holds a non-numeric value {str(raw.iloc[row])!r} (data row {row + 1})")
    infinite = np.isinf(values.to_numpy(dtype=np.float64))
    if infinite.any():  # pandas reads "inf" as a number; no fill can repair it, so say where it is
        row = int(np.flatnonzero(infinite)[0])
        raise DataError(f"column {col!r} holds an infinite value {str(raw.iloc[row])!r} (data row {row + 1})")
    return values.astype(np.float64)


def _time_index(column: pd.Series, name: str) -> pd.Index:
    if pd.api.types.is_integer_dtype(column):  # years or step numbers: an integer grid
        return pd.Index(column.to_numpy(dtype=np.int64))
    parsed = pd.to_datetime(column, errors="coerce")
    bad = parsed.isna() & column.notna()
    if bad.any() or column.isna().any():
        row = int(np.flatnonzero((bad | column.isna()).to_numpy())[0])
        raise DataError(f"time column {name!r} holds a value that is not a date: {column.iloc[row]!r} "
                        f"(data row {row + 1})")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert(None)
    return pd.DatetimeIndex(parsed)


def _regularise(data: pd.DataFrame, time: str, freq: str | None) -> tuple[pd.DataFrame, str | None]:
    """Sort by time; resample onto `freq` when given; otherwise demand a regular grid."""
    data = data.sort_index(kind="stable")
    index = data.index
    if not isinstance(index, pd.DatetimeIndex):  # integer grid
        if freq is not None:
            raise ConfigError("--freq resamples dates; the time column holds integers")
        steps = np.diff(index.to_numpy())
        if len(steps) and (steps.min() <= 0 or (steps != steps[0]).any()):
            at = int(np.flatnonzero(steps != steps[0])[0]) + 1 if (steps != steps[0]).any() else 0
            raise DataError(f"time column {time!r} is not a regular grid (step changes at {index[at]}); "
                            "fill the gaps in the data")
        start, step = int(index[0]), int(steps[0]) if len(steps) else 1
        data.index = pd.RangeIndex(start, start + len(data) * step, step)
        return data, None
    if freq is not None:
        try:
            resampled = data.resample(freq).mean()
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"--freq {freq!r} is not a pandas frequency ({exc})") from None
        resampled.index.freq = resampled.index.freq or freq
        return resampled, resampled.index.freqstr
    if index.has_duplicates:
        dup = index[index.duplicated()][0]
        raise DataError(f"time column {time!r} repeats {format_time(dup)}; pass --freq to aggregate onto a grid")
    if len(index) < 3:
        raise DataError(f"time column {time!r}: too few rows to tell the frequency; pass --freq")
    inferred = pd.infer_freq(index)
    if inferred is None:
        steps = np.diff(index.asi8)
        at = int(np.flatnonzero(steps != np.median(steps))[0]) if (steps != np.median(steps)).any() else 0
        raise DataError(f"time column {time!r} has irregular time stamps (near {format_time(index[at])} -> "
                        f"{format_time(index[at + 1])}); "
                        "pass --freq (e.g. --freq D) to resample onto a regular grid")
    data.index = pd.DatetimeIndex(index, freq=inferred)
    return data, inferred


def _fill(frame: pd.DataFrame, fill: str, index: pd.Index, what: str) -> pd.DataFrame:
    missing = frame.isna()
    if not missing.to_numpy().any():
        return frame
    if fill == "error":
        rows, cols = np.nonzero(missing.to_numpy())
        first = int(rows.min())
        col = frame.columns[cols[rows == first][0]]
        raise DataError(f"{what} {col!r} is missing a value at {format_time(index[first])} ({int(missing.to_numpy().sum())} "
                        "missing in all); pass --fill interpolate or --fill ffill")
    if fill == "interpolate":
        return frame.interpolate(method="linear", limit_direction="both")
    return frame.ffill().bfill()


def _filled_values(frame: pd.DataFrame, fill: str, index: pd.Index, what: str) -> np.ndarray:
    """The block as float64 after `fill`; what is still not finite (an infinite value given as a number, or
    a column with nothing to fill from) is an error naming the column and the first such time."""
    values = _fill(frame, fill, index, what).to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        name = frame.columns[col]
        if np.isinf(values[row, col]):
            raise DataError(f"{what} {name!r} holds an infinite value at {format_time(index[row])}")
        raise DataError(f"{what} {name!r} holds no values, so --fill {fill} has nothing to fill from")
    return values


def _assemble(target: pd.DataFrame, index: pd.Index, targets: tuple[str, ...], past: pd.DataFrame | None,
              fut: pd.DataFrame | None, freq: str | None, season_length: int | None, calendar: tuple[str, ...],
              fill: str, name: str, source: dict) -> Series:
    values = _filled_values(target, fill, index, "target column")
    past_values = None
    if past is not None:
        past_values = _filled_values(past, fill, index, "covariate")
    fut_values = None
    if fut is not None:
        full_index = index.append(future_index(index, freq, len(fut) - len(index))) if len(fut) > len(index) else index
        fut_values = _filled_values(fut, fill, full_index, "future covariate")
    if season_length is None:
        season_length = season_length_of(freq)
    return Series(values=values, index=index, columns=tuple(targets), freq=freq, season_length=int(season_length),
                  past_covariates=past_values,
                  past_covariate_names=tuple(past.columns) if past is not None else (),
                  future_covariates=fut_values,
                  future_covariate_names=tuple(fut.columns) if fut is not None else (),
                  calendar=calendar, name=name, source=source)
