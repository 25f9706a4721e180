"""Plot history, forecast and prediction bands, through the figure helper `rnnlab plot` uses (rnnlab._plot)."""

from __future__ import annotations

from pathlib import Path

from rnnlab._plot import figure_format, pyplot, save_figure
from rnnlab.forecasting.forecast import Forecast
from rnnlab.forecasting.series import Series


def plot_forecast(series: Series, forecast: Forecast, path: str | Path, *, history: int | None = None,
                  actual: Series | None = None, title: str | None = None) -> None:
    """Write a figure: the last `history` observations (default: all, at most 10 horizons), the forecast
    and one band per interval level (wider levels lighter); `actual` overlays the true future values."""
    fmt = figure_format(path, "--plot", default="png")  # a name without a suffix has always meant PNG
    plt = pyplot()

    shown = series.tail(history or max(10 * forecast.horizon, 3 * series.season_length))
    columns = len(forecast.columns)
    fig, axes = plt.subplots(columns, 1, figsize=(9, 3.2 * columns), squeeze=False, sharex=True)
    levels = sorted(forecast.intervals, reverse=True)
    for d, name in enumerate(forecast.columns):
        ax = axes[d][0]
        ax.plot(shown.index, shown.values[:, d], color="black", linewidth=1.2, label="history")
        for i, level in enumerate(levels):
            lower, upper = forecast.intervals[level]
            ax.fill_between(forecast.index, lower[:, d], upper[:, d], color="tab:blue",
                            alpha=0.15 + 0.2 * i, linewidth=0, label=f"{level}% interval")
        # Join the forecast to the last observation so the line does not start in mid-air.
        ax.plot(shown.index[-1:].append(forecast.index),
                [shown.values[-1, d], *forecast.values[:, d]], color="tab:blue", linewidth=1.6,
                label=f"forecast ({forecast.model})" if forecast.model else "forecast")
        if actual is not None:
            ax.plot(actual.index, actual.values[:, d], color="tab:orange", linewidth=1.2, label="actual")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    axes[0][0].set_title(title or f"{series.name}: {forecast.horizon}-step forecast")
    fig.tight_layout()
    save_figure(fig, path, fmt)
