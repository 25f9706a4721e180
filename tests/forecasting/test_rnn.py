import json

import numpy as np
import pandas as pd
import pytest
import torch

from rnnlab.errors import ConfigError, DataError, ModelDirError
from rnnlab.forecasting.config import ForecastConfig
from rnnlab.forecasting.forecasters import load_forecaster
from rnnlab.forecasting.rnn import RNNForecaster
from rnnlab.forecasting.series import from_array

TINY = dict(hidden_size=8, epochs=6, batch_size=16, patience=None)


def test_direct_forecast_has_shape_index_and_ordered_intervals(sine):
    series = from_array(sine(96), start="2000-01-01", freq="MS")
    model = RNNForecaster(horizon=6, lookback=24, **TINY).fit(series)
    forecast = model.predict()
    assert forecast.values.shape == (6, 1) and forecast.levels == (80, 95)
    assert forecast.index[0] == pd.Timestamp("2008-01-01")
    lo95, hi95 = forecast.intervals[95]
    lo80, hi80 = forecast.intervals[80]
    assert (lo95 <= lo80).all() and (lo80 <= forecast.values).all()
    assert (forecast.values <= hi80).all() and (hi80 <= hi95).all()
    assert model.predict(3).values.tolist() == forecast.values[:3].tolist()
    with pytest.raises(ConfigError, match="--horizon 7 is longer than the 6 steps"):
        model.predict(7)


def test_learns_a_clean_seasonal_series(sine):
    series = from_array(sine(120))
    model = RNNForecaster(horizon=12, lookback=24, hidden_size=16, epochs=150, patience=None,
                          window_norm="last").fit(series.until(108))
    error = np.abs(model.predict().values[:, 0] - series.values[108:, 0]).mean()
    assert error < 0.6  # amplitude 3: the seasonal shape is learnt, not just the level


def test_save_load_round_trip(tmp_path, sine):
    series = from_array(sine(80), start="2000-01-01", freq="MS")
    model = RNNForecaster(horizon=4, lookback=16, log=True, diff=("season",), ensemble=2, **TINY)
    model.fit(series, directory=tmp_path / "m")
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == ["config.json", "member-0", "member-1", "metrics.jsonl", "model.safetensors", "scaler.json",
                     "series.safetensors"]
    # each member is a run of the shared training loop, with its checkpoint, best weights and metrics
    assert sorted(p.name for p in (tmp_path / "m" / "member-1").iterdir()) == [
        "metrics.jsonl", "model.safetensors", "training_state.safetensors"]
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["settings"]["diff"] == [12] and config["settings"]["lookback"] == 16
    loaded = load_forecaster(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict().values, model.predict().values, rtol=1e-6)
    assert len(loaded.networks) == 2


def test_resume_reaches_the_uninterrupted_result(tmp_path, sine):
    series = from_array(sine(80))
    settings = dict(horizon=4, lookback=16, hidden_size=8, epochs=8, batch_size=16, checkpoint_every=2,
                    ensemble=2, val_size=8, patience=None)
    straight = RNNForecaster(**settings).fit(series, directory=tmp_path / "a")

    class Crash(Exception):
        pass

    def crash(record):
        if record["member"] == 1 and record["epoch"] == 3:
            raise Crash

    with pytest.raises(Crash):
        RNNForecaster(**settings).fit(series, directory=tmp_path / "b", callback=crash)
    resumed = RNNForecaster.resume(tmp_path / "b")
    for a, b in zip(straight.networks, resumed.networks):
        for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(x, y), name
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 16  # 2 members x 8 epochs, none repeated


def test_ensemble_members_are_the_single_seed_models(sine):
    series = from_array(sine(72))
    ensemble = RNNForecaster(horizon=4, lookback=12, ensemble=2, seed=3, **TINY).fit(series)
    single = RNNForecaster(horizon=4, lookback=12, seed=4, **TINY).fit(series)
    np.testing.assert_allclose(ensemble.members()[1].predict().values, single.predict().values, rtol=1e-6)
    members = np.stack([m.predict().values for m in ensemble.members()])
    np.testing.assert_allclose(ensemble.predict().values, np.median(members, axis=0), rtol=1e-5)


def test_recursive_mode_and_gaussian_head(sine):
    series = from_array(sine(72))
    recursive = RNNForecaster(horizon=4, lookback=12, recursive=True, samples=50, **TINY).fit(series)
    forecast = recursive.predict(10)  # any horizon: rolled forward
    assert forecast.values.shape == (10, 1)
    lo, hi = forecast.intervals[95]
    assert (hi - lo)[-1, 0] > 0
    np.testing.assert_allclose(recursive.predict(10).values, forecast.values)  # seeded simulation
    gaussian = RNNForecaster(horizon=4, lookback=12, head="gaussian", **TINY).fit(series).predict()
    lo, hi = gaussian.intervals[80]
    np.testing.assert_allclose(gaussian.values, (lo + hi) / 2, rtol=1e-5)  # symmetric around the mean


def test_covariates_and_calendar(monthly_csv):
    from rnnlab.forecasting.series import read_csv

    series = read_csv(monthly_csv, time="date", target="sales,visits", covariates="promo", calendar="month")
    model = RNNForecaster(horizon=3, lookback=12, **TINY).fit(series)
    assert model.networks[0].encoder.input_size == 2 + 1 + 2
    assert model.predict().values.shape == (3, 2)
    with pytest.raises(ConfigError, match="--recursive cannot use past covariates"):
        RNNForecaster(horizon=3, lookback=12, recursive=True, **TINY).fit(series)


def test_future_covariates_must_cover_the_horizon(tmp_path):
    t = np.arange(40)
    frame = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=40, freq="D"),
                          "y": np.where(t < 38, np.sin(t / 3) + 2, np.nan), "temp": np.cos(t / 3)})
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    from rnnlab.forecasting.series import read_csv

    series = read_csv(path, time="date", target="y", future_covariates="temp")
    assert series.future_known == 2
    model = RNNForecaster(horizon=2, lookback=8, **TINY).fit(series)
    assert model.predict().values.shape == (2, 1)
    longer = RNNForecaster(horizon=3, lookback=8, **TINY).fit(series)
    with pytest.raises(DataError, match="known up to 2020-02-09 but a forecast of 3 steps"):
        longer.predict()


def test_settings_and_length_are_checked(sine):
    with pytest.raises(ConfigError, match="--horizon must be a positive"):
        ForecastConfig(horizon=0)
    with pytest.raises(ConfigError, match="--cell must be one of"):
        ForecastConfig(cell="transformer")
    with pytest.raises(DataError, match="has 30 points, fewer than --lookback 24 \\+ --horizon 12 = 36"):
        RNNForecaster(horizon=12, lookback=24).fit(from_array(sine(30)))
    with pytest.raises(ConfigError, match="--lookback 12 leaves nothing after --diff 12"):
        RNNForecaster(horizon=2, lookback=12, diff=(12,)).fit(from_array(sine(60)))
    assert ForecastConfig(intervals=(50, 90)).quantiles == (0.05, 0.25, 0.5, 0.75, 0.95)


def test_missing_or_corrupt_model_dir(tmp_path, sine):
    with pytest.raises(ModelDirError, match="no such model directory"):
        load_forecaster(tmp_path / "nope")
    model = RNNForecaster(horizon=2, lookback=8, **TINY).fit(from_array(sine(40)))
    model.save(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelDirError, match="truncated or corrupt"):
        load_forecaster(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(ModelDirError, match="not valid JSON"):
        load_forecaster(tmp_path / "m")


def test_backtest_with_and_without_refit(sine):
    series = from_array(sine(72))
    model = RNNForecaster(horizon=4, lookback=12, **TINY)
    fits = []
    original_fit = RNNForecaster.fit

    def counting_fit(self, *args, **kwargs):
        fits.append(1)
        return original_fit(self, *args, **kwargs)

    RNNForecaster.fit = counting_fit
    try:
        refit = model.backtest(series, origins=3)
        once = model.backtest(series, origins=3, refit=False)
    finally:
        RNNForecaster.fit = original_fit
    assert len(fits) == 4  # three refits, then one fit conditioned on longer histories
    assert len(refit.metrics) == len(once.metrics) == 3
    assert not model.networks  # backtest fits clones, never the forecaster it was given
    assert {"mase", "coverage_95", "msis_80"} <= set(once.summary)
