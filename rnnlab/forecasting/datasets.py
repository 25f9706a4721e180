"""Named series that work offline: read from the packages of the field, never copied into rnnlab.

    air-passengers  monthly 1949-1960, 144 points   statsforecast.utils.AirPassengers
    sunspots        yearly 1700-2008, 309 points    statsmodels.datasets.sunspots
    elec-equip      monthly 1995-2016, 257 points   statsmodels.datasets.elec_equip
    co2             monthly 1958-2001, 526 points   statsmodels.datasets.co2 (weekly readings averaged
                                                    per month; the 5 empty months interpolated, as in
                                                    statsmodels' own STL example)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rnnlab.errors import DataError, RnnlabError
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
        raise RnnlabError(f"this dataset comes from {package}: pip install 'rnnlab[forecast]'") from None


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


def list_datasets() -> list[dict]:
    """One row per named series: name, length, frequency, season length, first and last time, source."""
    rows = []
    for info in DATASETS.values():
        series = info.load()
        rows.append({"name": info.name, "length": len(series), "freq": series.freq,
                     "season_length": series.season_length, "start": str(series.index[0].date()),
                     "end": str(series.index[-1].date()), "source": info.package, "description": info.description})
    return rows
