import numpy as np
import pytest
import torch

from rnnlab.errors import DataError
from rnnlab.forecasting.transforms import Scaler, TargetTransform, difference, integrate, window_stats
from rnnlab.forecasting.windows import last_window, make_windows


def test_scalers_by_hand():
    x = np.array([[1.0], [2.0], [3.0], [4.0], [100.0]])
    robust = Scaler("robust").fit(x)  # median 3, IQR 4 - 2 = 2
    assert robust.center.tolist() == [3.0] and robust.scale.tolist() == [2.0]
    minmax = Scaler("minmax").fit(x)
    assert minmax.transform(x)[[0, -1], 0].tolist() == [0.0, 1.0]
    standard = Scaler("standard").fit(x)
    assert standard.transform(x).mean() == pytest.approx(0.0) and standard.transform(x).std() == pytest.approx(1.0)
    flat = Scaler("robust").fit(np.ones((4, 1)))
    assert flat.scale.tolist() == [1.0]
    for scaler in (robust, minmax, standard):
        np.testing.assert_allclose(scaler.inverse(scaler.transform(x)), x)
        np.testing.assert_allclose(Scaler.from_dict(scaler.to_dict()).transform(x), scaler.transform(x))


def test_log_transform_round_trip_and_shift():
    x = np.array([[1.0, 0.0], [np.e, 5.0], [np.e**2, 2.0]])
    transform = TargetTransform(log=True, columns=("a", "b")).fit(x, "none")
    assert transform.shift.tolist() == [0.0, 1.0]  # column b holds a zero: log(x + 1)
    np.testing.assert_allclose(transform.transform(x)[:, 0], [0.0, 1.0, 2.0])
    np.testing.assert_allclose(transform.inverse(transform.transform(x)), x)
    restored = TargetTransform.from_dict(transform.to_dict())
    np.testing.assert_allclose(restored.transform(x), transform.transform(x))
    with pytest.raises(DataError, match="'b' holds -3"):
        transform.transform(np.array([[1.0, -3.0]]))


def test_difference_by_hand():
    x = torch.tensor([1.0, 2.0, 4.0, 7.0, 11.0, 16.0]).view(1, 6, 1)
    assert difference(x, (1,)).flatten().tolist() == [1, 2, 3, 4, 5]
    assert difference(x, (1, 1)).flatten().tolist() == [1, 1, 1, 1]
    assert difference(x, (2,)).flatten().tolist() == [3, 5, 7, 9]


@pytest.mark.parametrize("lags", [(1,), (4,), (1, 4), (4, 1), (3, 3)])
def test_integrate_inverts_difference(lags):
    torch.manual_seed(0)
    full = torch.randn(2, 30, 3).cumsum(1)  # [B, L + H, D]
    history, future = full[:, :20], full[:, 20:]
    increments = difference(full, lags)[:, -10:]  # the differenced future
    levels = integrate(history, increments.unsqueeze(-1), lags).squeeze(-1)
    torch.testing.assert_close(levels, future)


def test_integrate_seasonal_by_hand():
    history = torch.tensor([10.0, 20.0, 30.0]).view(1, 3, 1)  # season of 2: the last season is 20, 30
    increments = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    assert integrate(history, increments, (2,)).flatten().tolist() == [21.0, 32.0, 24.0]


def test_window_stats():
    window = torch.tensor([1.0, 2.0, 3.0, 6.0]).view(1, 4, 1)
    loc, scale = window_stats(window, "last")
    assert (loc.item(), scale.item()) == (6.0, 1.0)
    loc, scale = window_stats(window, "standard")
    assert loc.item() == 3.0 and scale.item() == pytest.approx(np.std([1, 2, 3, 6]))
    loc, scale = window_stats(window, "none")
    assert (loc.item(), scale.item()) == (0.0, 1.0)


def test_windows_cut_history_target_and_covariates():
    values = np.arange(10.0)[:, None]
    past = 100 + np.arange(10.0)[:, None]
    future = 1000 + np.arange(12.0)[:, None]  # two known future steps
    w = make_windows(values, past, future, lookback=3, horizon=2)
    assert len(w) == 6  # origins 3..8
    assert w.history[0, :, 0].tolist() == [0, 1, 2] and w.target[0, :, 0].tolist() == [3, 4]
    assert w.history[-1, :, 0].tolist() == [5, 6, 7] and w.target[-1, :, 0].tolist() == [8, 9]
    assert w.past[0, :, 0].tolist() == [100, 101, 102]
    assert w.future_in[0, :, 0].tolist() == [1000, 1001, 1002] and w.future_out[0, :, 0].tolist() == [1003, 1004]
    last = last_window(values, past, future, lookback=3, horizon=2)
    assert last.history[0, :, 0].tolist() == [7, 8, 9] and last.future_out[0, :, 0].tolist() == [1010, 1011]
