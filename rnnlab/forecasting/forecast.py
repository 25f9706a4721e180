"""What every forecaster returns: point forecasts and prediction intervals on a time index."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pandas is imported where a frame is made: a missing extra is then series.py's one-line error
    import pandas as pd


@dataclass(frozen=True, eq=False)
class Forecast:
    """`values` [H, D] point forecasts; `intervals[level] = (lower [H, D], upper [H, D])` for each level
    in percent (80 -> the central 80% interval); `index` the H time stamps; `columns` the D names."""

    index: pd.Index
    values: np.ndarray
    intervals: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    columns: tuple[str, ...] = ("y",)
    model: str = ""

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        object.__setattr__(self, "values", values)
        fixed = {}
        for level, (lower, upper) in sorted(self.intervals.items()):
            lower = np.asarray(lower, dtype=np.float64).reshape(values.shape)
            upper = np.asarray(upper, dtype=np.float64).reshape(values.shape)
            fixed[int(level)] = (lower, upper)
        object.__setattr__(self, "intervals", fixed)
        if len(self.index) != len(values):
            raise ValueError(f"forecast index has {len(self.index)} steps, values {len(values)}")

    @property
    def horizon(self) -> int:
        return len(self.values)

    @property
    def levels(self) -> tuple[int, ...]:
        return tuple(self.intervals)

    def head(self, steps: int) -> Forecast:
        return Forecast(self.index[:steps], self.values[:steps],
                        {lv: (lo[:steps], hi[:steps]) for lv, (lo, hi) in self.intervals.items()},
                        self.columns, self.model)

    def to_frame(self) -> pd.DataFrame:
        """One row per step: the time, then per column `name`, `name_lo80`, `name_hi80`, ..."""
        data: dict[str, np.ndarray] = {}
        for d, name in enumerate(self.columns):
            data[name] = self.values[:, d]
            for level, (lower, upper) in self.intervals.items():
                data[f"{name}_lo{level}"] = lower[:, d]
                data[f"{name}_hi{level}"] = upper[:, d]
        import pandas as pd

        frame = pd.DataFrame(data, index=self.index)
        frame.index.name = "time"
        return frame


def from_quantiles(index: pd.Index, quantiles: np.ndarray, probs: tuple[float, ...], levels: tuple[int, ...],
                   columns: tuple[str, ...], model: str) -> Forecast:
    """A Forecast from quantiles [Q, H, D] at `probs` (which hold 0.5 and both ends of every level)."""
    where = {round(p, 6): i for i, p in enumerate(probs)}
    quantiles = np.sort(quantiles, axis=0)
    intervals = {}
    for level in levels:
        lo, hi = round((1 - level / 100) / 2, 6), round(1 - (1 - level / 100) / 2, 6)
        intervals[level] = (quantiles[where[lo]], quantiles[where[hi]])
    return Forecast(index, quantiles[where[0.5]], intervals, columns, model)
