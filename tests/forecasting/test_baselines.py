from statistics import NormalDist

import numpy as np
import pytest

from rnnlab.errors import ConfigError, ModelDirError
from rnnlab.forecasting.backtest import backtest
from rnnlab.forecasting.base import Forecaster
from rnnlab.forecasting.baselines import (
    DriftForecaster,
    NaiveForecaster,
    SeasonalNaiveForecaster,
    StatsForecastForecaster,
)
from rnnlab.forecasting.datasets import load_dataset
from rnnlab.forecasting.forecasters import load_forecaster, make_forecaster
from rnnlab.forecasting.series import from_array

Z80 = NormalDist().inv_cdf(0.9)


def test_naive_by_hand():
    series = from_array([1.0, 3.0, 2.0, 4.0])  # one-step residuals 2, -1, 2: sigma = sqrt(3)
    forecast = NaiveForecaster(intervals=(80,)).fit(series).predict(4)
    assert forecast.values[:, 0].tolist() == [4.0] * 4
    lower, upper = forecast.intervals[80]
    np.testing.assert_allclose(upper[:, 0] - 4.0, Z80 * np.sqrt(3) * np.sqrt([1, 2, 3, 4]))
    assert list(forecast.index) == [4, 5, 6, 7]


def test_seasonal_naive_by_hand():
    series = from_array([1.0, 2.0, 3.0, 2.0, 3.0, 4.0], season_length=3)  # residuals 1, 1, 1
    forecast = SeasonalNaiveForecaster(intervals=(80,)).fit(series).predict(5)
    assert forecast.values[:, 0].tolist() == [2.0, 3.0, 4.0, 2.0, 3.0]
    _, upper = forecast.intervals[80]
    np.testing.assert_allclose(upper[:, 0] - forecast.values[:, 0], Z80 * np.sqrt([1, 1, 1, 2, 2]))


def test_drift_by_hand():
    series = from_array([1.0, 2.0, 4.0, 7.0])  # slope 2
    forecast = DriftForecaster().fit(series).predict(2)
    assert forecast.values[:, 0].tolist() == [9.0, 11.0]


@pytest.mark.parametrize("spec", ["naive", "seasonal-naive", "drift", "auto-ets", "lstm"])
def test_every_forecaster_speaks_one_interface(spec, tmp_path):
    """Each one fits, predicts the horizon after the series' end, backtests, saves, loads and clones the
    same way: the calls a user or the CLI makes, not only the method names."""
    t = np.arange(48, dtype=float)
    series = from_array(10 + np.sin(2 * np.pi * t / 12) + 0.05 * t, season_length=12)
    settings = dict(horizon=3) if spec != "lstm" else dict(horizon=3, epochs=2, hidden_size=8, ensemble=1)
    forecaster = make_forecaster(spec, **settings)
    assert isinstance(forecaster, Forecaster) and forecaster.name
    forecast = forecaster.fit(series).predict(3)
    assert forecast.values.shape == (3, 1) and np.isfinite(forecast.values).all(), spec
    assert list(forecast.index) == [48, 49, 50]
    forecaster.save(tmp_path / "model")
    again = load_forecaster(tmp_path / "model").predict(3)
    np.testing.assert_allclose(again.values, forecast.values, rtol=1e-5, atol=1e-6)
    result = forecaster.clone().backtest(series, horizon=3, origins=2)
    assert np.isfinite(result.summary["mase"]), spec


def test_seasonal_naive_backtest_matches_the_reference_levels():
    series = load_dataset("air-passengers")
    holdout = backtest(SeasonalNaiveForecaster(), series, horizon=12, origins=1)
    rolling = backtest(SeasonalNaiveForecaster(), series, horizon=12, origins=3)
    assert holdout.summary["mase"] == pytest.approx(1.571, abs=1e-3)
    assert rolling.summary["mase"] == pytest.approx(1.213, abs=1e-3)
    assert [str(c.date()) for c in rolling.cutoffs] == ["1957-12-01", "1958-12-01", "1959-12-01"]
    assert len(rolling.forecasts_frame()) == 36 and len(rolling.to_frame()) == 3


def test_auto_arima_holdout_matches_the_reference_level(tmp_path):
    series = load_dataset("air-passengers")
    model = StatsForecastForecaster("auto-arima", horizon=12, season_length=12)
    result = model.backtest(series, origins=1)
    assert result.summary["mase"] == pytest.approx(0.608, abs=2e-3)
    lower, upper = result.forecasts[0].intervals[95]
    assert (lower < result.forecasts[0].values).all() and (result.forecasts[0].values < upper).all()
    fitted = model.clone().fit(series.until(132))
    fitted.save(tmp_path / "arima")
    loaded = load_forecaster(tmp_path / "arima")
    np.testing.assert_allclose(loaded.predict().values, fitted.predict().values)
    assert StatsForecastForecaster.load(tmp_path / "arima").model == "auto-arima"
    with pytest.raises(ModelDirError, match="holds a model of kind 'auto-arima', not a NaiveForecaster"):
        NaiveForecaster.load(tmp_path / "arima")


def test_baseline_settings_are_checked():
    with pytest.raises(ConfigError, match="--horizon"):
        NaiveForecaster(horizon=0)
    with pytest.raises(ConfigError, match="--model must be one of"):
        make_forecaster("prophet")
    with pytest.raises(ConfigError, match="--horizon must be a positive"):
        NaiveForecaster().fit(from_array([1.0, 2.0])).predict(-1)
