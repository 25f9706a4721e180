"""Named series that work offline: read from the packages of the field, never copied into rnnlab.

    air-passengers  monthly 1949-1960, 144 points   statsforecast.utils.AirPassengers
    sunspots        yearly 1700-2008, 309 points    statsmodels.datasets.sunspots
    elec-equip      monthly 1995-2016, 257 points   statsmodels.datasets.elec_equip
    co2             monthly 1958-2001, 526 points   statsmodels.datasets.co2 (weekly readings averaged
                                                    per month; the 5 empty months interpolated, as in
                                                    statsmodels' own STL example)

Panels (many series; read from a data folder, checksums verified, never shipped with rnnlab):
    m4-hourly       414 hourly series of 700-960 points, horizon 48, season 24: the M4 competition's
                    Hourly-train.csv / Hourly-test.csv (Mcompetitions/M4-methods), found in DATA_DIR or
                    DATA_DIR/m4 (--data-dir, else $RNNLAB_DATA_DIR)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rnnlab.errors import DataError, MissingExtraError
from rnnlab.forecasting.series import Series, check_calendar, from_array, read_csv, split_names


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    package: str
    freq: str
    season_length: int
    description: str
    load: Callable[[], Series]


def _need(package: str):
    try:
        return __import__(package)
    except ImportError:
        raise MissingExtraError(package, "this dataset") from None


def _air_passengers() -> Series:
    _need("statsforecast")
    from statsforecast.utils import AirPassengers

    return from_array(np.asarray(AirPassengers, dtype=np.float64), start="1949-01-01", freq="MS",
                      season_length=12, columns=("passengers",), name="air-passengers")


def _sunspots() -> Series:
    _need("statsmodels")
    from statsmodels.datasets import sunspots

    frame = sunspots.load_pandas().data
    return from_array(frame["SUNACTIVITY"].to_numpy(), start=f"{int(frame['YEAR'].iloc[0])}-01-01", freq="YS",
                      season_length=11, columns=("sunactivity",), name="sunspots")


def _elec_equip() -> Series:
    _need("statsmodels")
    from statsmodels.datasets import elec_equip

    frame = elec_equip.load().data
    return from_array(frame.iloc[:, 0].to_numpy(), start=frame.index[0], freq="MS", season_length=12,
                      columns=("elec_equip",), name="elec-equip")


def _co2() -> Series:
    _need("statsmodels")
    from statsmodels.datasets import co2

    monthly = co2.load().data["co2"].resample("MS").mean()
    return from_array(monthly.to_numpy(), start=monthly.index[0], freq="MS", season_length=12,
                      columns=("co2",), fill="interpolate", name="co2")


DATASETS: dict[str, DatasetInfo] = {
    "air-passengers": DatasetInfo("air-passengers", "statsforecast", "MS", 12,
                                  "monthly airline passengers (thousands), 1949-1960", _air_passengers),
    "sunspots": DatasetInfo("sunspots", "statsmodels", "YS", 11, "yearly sunspot activity, 1700-2008", _sunspots),
    "elec-equip": DatasetInfo("elec-equip", "statsmodels", "MS", 12,
                              "euro-area electrical equipment orders index, 1995-2016", _elec_equip),
    "co2": DatasetInfo("co2", "statsmodels", "MS", 12,
                       "Mauna Loa CO2 (ppm), weekly readings averaged per month, 1958-2001", _co2),
}


def load_dataset(name: str) -> Series:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    return replace(DATASETS[name].load(), source={"dataset": name})


def load_series(data: str | Path, *, time: str | None = None, target=None, covariates=None,
                future_covariates=None, calendar=(), fill: str = "error", freq: str | None = None,
                season_length: int | None = None) -> Series:
    """DATA as the command line takes it: a CSV path, or the name of a dataset (`list_datasets`).

    A dataset keeps its own columns; `calendar` and `season_length` still apply to it.
    """
    path = Path(data)
    if path.is_file():
        return read_csv(path, time=time, target=target, covariates=covariates,
                        future_covariates=future_covariates, calendar=calendar, fill=fill, freq=freq,
                        season_length=season_length)
    if str(data) in DATASETS:
        if split_names(covariates) or split_names(future_covariates):
            raise DataError(f"dataset {data!r} has no covariate columns; add calendar features with --calendar")
        series = load_dataset(str(data))
        calendar = check_calendar(split_names(calendar))
        source = {**series.source, "calendar": list(calendar), "season_length": season_length}
        return replace(series, calendar=calendar, season_length=season_length or series.season_length,
                       source=source)
    if path.suffix or "/" in str(data) or "\\" in str(data):
        raise DataError(f"{data}: no such file")
    raise DataError(f"unknown dataset {str(data)!r} and no such file (datasets: {', '.join(DATASETS)})")


M4_COMMIT = "6c1067e5a57161249b17289a565178dc7a3fb3ca"
M4_HOURLY = {  # file -> sha256 (see the data folder's README)
    "Hourly-train.csv": "ea59b7783573c49077a835ab6465c7d66f1474783360f310988a9a737fbca62f",
    "Hourly-test.csv": "71a57fccb15e534d973626ada4fb87febf789e9317715b7cc6dd3b5f90db6f42",
}
PANELS = {"m4-hourly": "M4 Hourly: 414 series, horizon 48, season 24 (train and test files)"}


def _data_dir(data_dir: str | Path | None) -> Path | None:
    import os

    if data_dir is None and os.environ.get("RNNLAB_DATA_DIR"):
        data_dir = os.environ["RNNLAB_DATA_DIR"]
    return None if data_dir is None else Path(data_dir)


def _m4_file(filename: str, data_dir: str | Path | None) -> Path:
    import hashlib

    folder = _data_dir(data_dir)
    candidates = [] if folder is None else [folder / filename, folder / "m4" / filename]
    for path in candidates:
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != M4_HOURLY[filename]:
                raise DataError(f"{path}: sha256 {digest[:12]}... is not M4's published {filename} "
                                f"({M4_HOURLY[filename][:12]}...)")
            return path
    where = f" in {folder} or {folder / 'm4'}" if folder is not None else " (pass --data-dir)"
    raise DataError(f"m4-hourly: {filename} not found{where}; it is Dataset/{'Train' if 'train' in filename else 'Test'}/"
                    f"{filename} of github.com/Mcompetitions/M4-methods at commit {M4_COMMIT[:7]}")


def _wide_rows(path: Path) -> list[tuple[str, np.ndarray]]:
    import pandas as pd

    frame = pd.read_csv(path)
    ids = frame.iloc[:, 0].astype(str).tolist()
    values = frame.iloc[:, 1:].to_numpy(dtype=np.float64)
    return [(name, row[~np.isnan(row)]) for name, row in zip(ids, values)]


def load_panel(name: str, data_dir: str | Path | None = None, split: str = "train") -> list[Series]:
    """A named panel's series ("train": the training rows; "test": the values that follow each one)."""
    if name not in PANELS:
        raise DataError(f"unknown panel {name!r} (known: {', '.join(PANELS)})")
    rows = _wide_rows(_m4_file("Hourly-train.csv" if split == "train" else "Hourly-test.csv", data_dir))
    return [from_array(values, season_length=24, columns=("y",), name=key) for key, values in rows]


def list_datasets(data_dir: str | Path | None = None) -> list[dict]:
    """One row per named series: name, length, frequency, season length, first and last time, source; then
    each panel found in the data folder (its length is the number of series)."""
    rows = []
    for info in DATASETS.values():
        series = info.load()
        rows.append({"name": info.name, "length": len(series), "freq": series.freq,
                     "season_length": series.season_length, "start": str(series.index[0].date()),
                     "end": str(series.index[-1].date()), "source": info.package, "description": info.description})
    if _data_dir(data_dir) is not None:
        for name, description in PANELS.items():
            try:
                panel = load_panel(name, data_dir)
            except DataError:
                continue
            lengths = [len(s) for s in panel]
            rows.append({"name": name, "length": len(panel), "freq": "h", "season_length": 24, "start": 0,
                         "end": f"{min(lengths) - 1}..{max(lengths) - 1}", "source": "M4 (data dir)",
                         "description": description, "series": len(panel), "horizon": 48})
    return rows


def load_data(data: str | Path, *, id: str | None = None, data_dir: str | Path | None = None,
              **options) -> Series | list[Series]:
    """DATA as the command line takes it, one series or many: a panel name (`m4-hourly`), a long-format CSV
    (an `--id` column, or a `unique_id` column: one row per series and time), or what `load_series` reads."""
    if str(data) in PANELS:
        return load_panel(str(data), data_dir)
    path = Path(data)
    if path.is_file() and (id is not None or _header_has(path, "unique_id")):
        import pandas as pd

        from rnnlab.forecasting.panel import panel_from_frame

        if split_names(options.get("covariates")) or split_names(options.get("future_covariates")) or \
                options.get("calendar"):
            raise DataError("long-format data (many series) takes no covariates or calendar features yet")
        target = options.get("target")
        try:
            frame = pd.read_csv(path)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: not a readable CSV ({exc})") from None
        return panel_from_frame(frame, id=id, time=options.get("time"), target=target, freq=options.get("freq"),
                                season_length=options.get("season_length"), fill=options.get("fill") or "error")
    return load_series(data, **options)


def _header_has(path: Path, column: str) -> bool:
    import csv

    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError):
        return False
    return column in [name.strip() for name in header]
