"""The default forecaster decides on the series' own held-out tail: networks (transform variants,
ensembles), classical models, or a blend; it says what it chose, and saves and reloads that choice."""

import json

import numpy as np
import pytest

from rnnlab.cli_forecast import main
from rnnlab.forecasting.auto import CLASSICAL, AutoForecaster, network_variants
from rnnlab.forecasting.baselines import make_baseline
from rnnlab.forecasting.forecasters import load_forecaster
from rnnlab.forecasting.series import from_array

TINY = dict(hidden_size=4, epochs=2, patience=None)


def seasonal(length=96, period=12, noise=0.2, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    return from_array(20 + 5 * np.sin(2 * np.pi * t / period) + noise * rng.standard_normal(length),
                      start="2000-01-01", freq="MS")


def test_an_undertrained_network_loses_and_the_classical_choice_forecasts():
    series = seasonal()
    auto = AutoForecaster(horizon=6, members=1, **TINY).fit(series)
    assert set(auto.validation) >= {"seasonal-naive", "auto-ets", "auto-theta", "network:plain",
                                    "network:log+diff season", "networks"}
    best = min(auto.validation, key=auto.validation.get)
    assert auto.choice["candidate"] == best and auto.choice["validation_mase"] == auto.validation[best]
    assert best in CLASSICAL  # two epochs of a 4-unit network do not beat a clean season
    # the networks were fitted before the tail, never on it; the classical choice is refitted on everything
    assert all(len(net.series) == len(series) - 6 for net in auto.networks)
    expected = make_baseline(best, horizon=6).fit(series).predict(6)
    np.testing.assert_allclose(auto.predict().values, expected.values)
    assert auto.predict().model == "rnnlab_auto" and auto.predict().levels == (80, 95)


def test_the_choice_and_the_networks_survive_save_and_load(tmp_path):
    # a period-24 wave declared as season 12: the classical models and seasonal naive get it partly wrong
    t = np.arange(120)
    values = 10 + 3 * np.sin(2 * np.pi * t / 24) + np.where(t % 12 < 2, 2.0, 0.0)
    auto = AutoForecaster(horizon=6, members=1, hidden_size=8, epochs=20, patience=None)
    auto.fit(from_array(values, season_length=12))
    assert auto.validation["seasonal-naive"] > auto.choice["validation_mase"]
    auto.save(tmp_path / "m")
    loaded = load_forecaster(tmp_path / "m")
    assert isinstance(loaded, AutoForecaster) and loaded.choice == auto.choice
    np.testing.assert_allclose(loaded.predict().values, auto.predict().values, rtol=1e-6)
    shorter = from_array(values[:100], season_length=12)
    np.testing.assert_allclose(loaded.predict(3, series=shorter).values, auto.predict(3, series=shorter).values,
                               rtol=1e-6)
    for candidate in ("networks", "network:plain"):  # every network path of a loaded model forecasts alike
        for model in (auto, loaded):
            model.choice = {**model.choice, "candidate": candidate}
        np.testing.assert_allclose(loaded.predict().values, auto.predict().values, rtol=1e-6)


def test_transform_variants_follow_the_series():
    from rnnlab.forecasting.config import ForecastConfig

    monthly = seasonal()
    assert network_variants(monthly, ForecastConfig(horizon=6)) == [{}, {"log": True, "diff": ("season",)}]
    negative = from_array(monthly.values[:, 0] - 100, start="2000-01-01", freq="MS")
    assert network_variants(negative, ForecastConfig(horizon=6)) == [{}, {"diff": ("season",)}]
    assert network_variants(monthly, ForecastConfig(horizon=6, log=True)) == [{}]  # the user chose
    weekly = from_array(np.arange(2000.0) % 336, season_length=336)
    assert network_variants(weekly, ForecastConfig(horizon=48)) == [{}]  # the season profile instead


def run(capsys, *argv):
    code = main(["forecast", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_prints_the_choice_and_info_shows_it(tmp_path, capsys):
    model_dir = tmp_path / "auto"
    code, out, err = run(capsys, "train", "air-passengers", "-o", model_dir, "--horizon", "6", "--model", "auto",
                         "--hidden", "4", "--epochs", "2", "--ensemble", "1", "--no-progress")
    assert code == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["model"] == "rnnlab_auto" and summary["choice"] in summary["validation_mase"]
    assert "seasonal-naive" in summary["validation_mase"]
    code, out, err = run(capsys, "info", model_dir)
    info = json.loads(out)
    assert code == 0 and info["kind"] == "auto" and info["choice"]["candidate"] == summary["choice"]
    assert info["validation"] == summary["validation_mase"] and info["series"]["length"] == 144
    code, out, err = run(capsys, "predict", model_dir)
    assert code == 0 and out.splitlines()[0].startswith("time,passengers,") and len(out.splitlines()) == 7
    code, out, err = run(capsys, "train", "air-passengers", "-o", model_dir, "--horizon", "6", "--model", "auto",
                         "--hidden", "4", "--epochs", "2", "--ensemble", "1", "--no-progress", "--force")
    assert code == 0, err
    code, _, err = run(capsys, "info", tmp_path / "nope")
    assert code == 2 and err.startswith("rnnlab: error: ") and "no such model directory" in err


@pytest.mark.parametrize("flags, kind", [([], "auto"), (["--seed", "3"], "auto"), (["--hidden", "8"], "rnn"),
                                         (["--log"], "rnn"), (["--model", "lstm"], "rnn")])
def test_no_network_flag_means_the_automatic_choice(flags, kind):
    import argparse

    from rnnlab.cli_forecast import _forecaster, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["forecast", "train", "air-passengers", "-o", "x", "--horizon", "3", *flags])
    assert _forecaster(args).kind == kind
