"""Forecasting numeric sequences with recurrent networks, behind one interface shared with the baselines.

    from rnnlab.forecasting import load_dataset, RNNForecaster, SeasonalNaiveForecaster

    series = load_dataset("air-passengers")               # or from_array(...), read_csv(...)
    model = RNNForecaster(horizon=12, log=True, diff=("season",), ensemble=5).fit(series)
    forecast = model.predict()                            # values [H, D], intervals {80: (lo, hi), 95: ...}
    forecast.to_frame().to_csv("forecast.csv")
    model.save("model_dir"); load_forecaster("model_dir").predict(6)
    SeasonalNaiveForecaster().backtest(series, horizon=12, origins=3).summary["mase"]

Layer L4 of rnnlab (see ARCHITECTURE.md). Needs the `forecast` extra (pandas, statsforecast, statsmodels).
"""

from rnnlab.forecasting import metrics
from rnnlab.forecasting.auto import AutoForecaster
from rnnlab.forecasting.backtest import BacktestResult, backtest
from rnnlab.forecasting.base import Forecaster
from rnnlab.forecasting.baselines import (
    DriftForecaster,
    NaiveForecaster,
    SeasonalNaiveForecaster,
    StatsForecastForecaster,
)
from rnnlab.forecasting.config import ForecastConfig
from rnnlab.forecasting.datasets import DATASETS, list_datasets, load_dataset, load_series
from rnnlab.forecasting.forecast import Forecast
from rnnlab.forecasting.forecasters import MODELS, load_forecaster, make_forecaster
from rnnlab.forecasting.plot import plot_forecast
from rnnlab.forecasting.rnn import RNNForecaster
from rnnlab.forecasting.series import Series, as_series, from_array, from_frame, read_csv

__all__ = [
    "AutoForecaster", "BacktestResult", "DATASETS", "DriftForecaster", "Forecast", "ForecastConfig", "Forecaster", "MODELS",
    "NaiveForecaster", "RNNForecaster", "SeasonalNaiveForecaster", "Series", "StatsForecastForecaster",
    "as_series", "backtest", "from_array", "from_frame", "list_datasets", "load_dataset", "load_forecaster",
    "load_series", "make_forecaster", "metrics", "plot_forecast", "read_csv",
]
