"""A panel's network with no flag that shapes it: the defaults chosen on M4 Hourly's dev split."""

from __future__ import annotations

import numpy as np

from rnnlab.forecasting.forecasters import make_panel_forecaster
from rnnlab.forecasting.panel import PANEL_WINDOWS, GlobalForecaster, panel_defaults
from rnnlab.forecasting.series import from_array


def _panel(length: int, season: int = 4, count: int = 3, offset: float = 10.0):
    rng = np.random.default_rng(0)
    t = np.arange(length)
    return [from_array(offset + i + np.sin(2 * np.pi * t / season) + 0.1 * rng.standard_normal(length),
                       season_length=season, columns=("y",), name=f"s{i}") for i in range(count)]


def test_a_long_seasonal_panel_reads_seven_seasons_a_season_per_step():
    settings = panel_defaults(_panel(60), horizon=4)
    assert settings == {"window_norm": "mean", "highway": True, "ensemble": 2, "threads": None, "log": True,
                        "lookback": 28, "patch": 4, "hidden_size": 256}


def test_short_series_non_positive_values_or_no_season_keep_the_step_by_step_network():
    assert "patch" not in panel_defaults(_panel(30), horizon=4)  # 28 + 3 x 4 points are not there
    assert "patch" not in panel_defaults(_panel(200, season=1), horizon=4)
    assert "patch" not in panel_defaults(_panel(2000, season=48), horizon=4)  # 7 x 48 > the 192 cap
    assert panel_defaults(_panel(60, offset=-0.5), horizon=4)["log"] is False


def test_auto_fits_with_the_defaults_and_keeps_what_the_user_gave():
    forecaster = make_panel_forecaster("auto", horizon=4, ensemble=1, epochs=1)
    assert isinstance(forecaster, GlobalForecaster) and forecaster.auto
    assert forecaster.windows_per_series == PANEL_WINDOWS
    forecaster.fit(_panel(60))
    c = forecaster.fitted_config
    assert (c.lookback, c.patch, c.hidden_size, c.highway, c.log, c.window_norm) == (28, 4, 256, True, True, "mean")
    assert (c.ensemble, c.epochs) == (1, 1)  # given, so not derived
    assert len(forecaster.predict()) == 3
    explicit = make_panel_forecaster("lstm", horizon=4, epochs=1)
    assert not explicit.auto and explicit.windows_per_series == 64


def test_auto_derives_about_eight_thousand_steps_and_saves_its_choice(tmp_path):
    forecaster = make_panel_forecaster("auto", horizon=4, ensemble=1, batch_size=64)
    forecaster.fit(_panel(60))
    steps_per_epoch = 2  # 3 series x 25 windows (origins 28..52, the last 4 points validate), 64 a batch
    assert forecaster.fitted_config.epochs == round(8000 / steps_per_epoch)
    forecaster.save(tmp_path)
    again = GlobalForecaster.load(tmp_path)
    assert again.auto and again.given == forecaster.given
    np.testing.assert_array_equal(again.predict()[0].values, forecaster.predict()[0].values)
