"""Long series are fast: a bounded default window, long seasons summarised as a season profile, batches and
epochs sized from the data."""

import numpy as np
import pytest

from rnnlab.errors import ConfigError
from rnnlab.forecasting.rnn import RNNForecaster, default_batch_size, default_epochs, default_lookback
from rnnlab.forecasting.series import from_array
from rnnlab.forecasting.windows import last_window, make_windows, profile_reach, season_profile


def test_default_lookback_is_bounded_and_short_seasons_keep_three():
    assert default_lookback(12, 12) == 36  # monthly: three seasons, as before
    assert default_lookback(24, 11, (11,)) == 48 + 11
    assert default_lookback(48, 24) == 96
    assert default_lookback(48, 336) == 96  # a weekly season of half-hours: two horizons, not 1,008 steps
    assert default_lookback(150, 336) == 192
    assert default_lookback(500, 1) == 192


def test_batch_and_epochs_grow_and_shrink_with_the_data():
    assert default_batch_size(100) == 32 and default_batch_size(3200) == 100 and default_batch_size(10**6) == 256
    assert default_epochs(100, 32) == 300  # 4 steps an epoch: the old default
    assert default_epochs(3200, 100) == 62  # 32 steps an epoch: about 2,000 steps in all
    assert default_epochs(10**6, 256) == 30


def test_season_profile_averages_earlier_seasons_and_never_reads_past_the_origin():
    values = np.arange(40.0)[:, None]
    season, count, lookback, horizon = 6, 2, 3, 8  # a horizon longer than the season
    reach = profile_reach(lookback, horizon, season, count)
    origin = 30
    profile = season_profile(values, np.array([origin]), lookback, horizon, season, count)[0, :, 0]
    # window step u = 27: mean of 21 and 15; horizon step u = 30: mean of 24 and 18; u = 36 (one season on):
    # 30 is not observed before the origin, so two seasons back and three: mean of 24 and 18.
    assert profile[0] == (21 + 15) / 2 and profile[3] == (24 + 18) / 2 and profile[3 + 6] == (24 + 18) / 2
    assert profile[3 + 5] == (29 + 23) / 2  # u = 35: 29 observed
    # the profile of a window equals the profile computed from data that stops at the origin
    cut = season_profile(values[:origin], np.array([origin]), lookback, horizon, season, count)
    np.testing.assert_array_equal(cut[0, :, 0], profile)
    assert reach == 3 + 2 * 6 and origin >= reach
    w = make_windows(values, np.zeros((40, 0)), np.zeros((40, 0)), lookback, horizon, profile=(season, count))
    assert len(w) == 40 - horizon - reach + 1 and w.profile.shape == (len(w), lookback + horizon, 1)
    assert w.history[0, -1, 0].item() == reach - 1  # the first origin is where the profile can be read
    last = last_window(values, np.zeros((40, 0)), np.zeros((40, 0)), lookback, horizon, profile=(season, count))
    assert last.profile.shape == (1, lookback + horizon, 1)


def long_series(length=900, season=120, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    shape = np.where((t % season) < season // 4, 6.0, 0.0) + 2 * np.sin(2 * np.pi * t / 24)
    return from_array(10 + shape + 0.3 * rng.standard_normal(length), season_length=season)


def test_a_season_longer_than_the_window_is_learnt_through_the_profile():
    series = long_series()
    train, actual = series.until(900 - 24), series.values[-24:, 0]
    settings = dict(horizon=24, hidden_size=8, epochs=25, patience=None)
    with_profile = RNNForecaster(**settings).fit(train)
    config = with_profile.fitted_config
    assert config.lookback == 96 and config.season_profile == 2
    assert with_profile.networks[0].encoder.input_size == 2  # the target and its profile
    without = RNNForecaster(season_profile=0, **settings).fit(train)
    error = lambda model: np.abs(model.predict().values[:, 0] - actual).mean()  # noqa: E731
    assert error(with_profile) < 0.6 * error(without)  # the weekly-like block is 6 high; the window misses it


def test_profile_settings_are_checked():
    with pytest.raises(ConfigError, match="--season-profile needs the direct head"):
        RNNForecaster(horizon=4, season_profile=1, recursive=True).fit(long_series())
    with pytest.raises(ConfigError, match="--season-profile needs a season"):
        RNNForecaster(horizon=4, season_profile=1).fit(from_array(np.arange(200.0)))
    assert RNNForecaster(horizon=4, recursive=True, epochs=1).resolve(long_series()).season_profile == 0
