import numpy as np
import pytest

from rnnlab.errors import DataError
from rnnlab.forecasting import metrics
from rnnlab.forecasting.forecast import Forecast


def test_point_metrics_by_hand():
    actual, forecast = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 2.0, 1.0, 4.0])
    assert metrics.mae(actual, forecast) == pytest.approx(0.75)  # (1 + 0 + 2 + 0) / 4
    assert metrics.rmse(actual, forecast) == pytest.approx(np.sqrt(5 / 4))
    # sMAPE: 200/4 * (1/3 + 0 + 2/4 + 0)
    assert metrics.smape(actual, forecast) == pytest.approx(50 * (1 / 3 + 0.5))


def test_mase_uses_the_in_sample_seasonal_naive_error():
    insample = np.array([1.0, 2.0, 4.0, 3.0, 5.0, 6.0])  # lag-2 differences: 3, 1, 1, 3 -> scale 2
    assert metrics.seasonal_scale(insample, 2).tolist() == [2.0]
    assert metrics.mase([10.0, 10.0], [11.0, 13.0], insample, 2) == pytest.approx(2.0 / 2.0)
    assert metrics.mase([10.0], [11.0], insample, 1) == pytest.approx(1.0 / 1.4)  # lag-1 MAE = 7/5
    with pytest.raises(DataError, match="flat"):
        metrics.mase([1.0], [1.0], np.ones(5), 1)


def test_coverage_and_msis_by_hand():
    actual = np.array([1.0, 5.0, 10.0])
    lower, upper = np.array([0.0, 0.0, 0.0]), np.array([2.0, 4.0, 12.0])
    assert metrics.coverage(actual, lower, upper) == pytest.approx(2 / 3)
    insample = np.array([0.0, 1.0, 2.0, 3.0])  # lag-1 scale 1
    # widths 2, 4, 12 -> mean 6; one miss above by 1 with alpha 0.05: 2/0.05 * 1 / 3
    assert metrics.msis(actual, lower, upper, insample, 1, 95) == pytest.approx(6 + 40 / 3)


def test_multivariate_metrics_average_columns_with_their_own_scale():
    insample = np.array([[0.0, 0.0], [1.0, 10.0], [2.0, 20.0]])  # scales 1 and 10
    value = metrics.mase([[3.0, 30.0]], [[4.0, 40.0]], insample, 1)
    assert value == pytest.approx(1.0)


def test_evaluate_reports_every_metric_per_level():
    forecast = Forecast(index=np.arange(2), values=np.array([1.0, 2.0]),
                        intervals={80: (np.array([0.0, 1.0]), np.array([2.0, 3.0]))})
    out = metrics.evaluate(forecast, np.array([[1.0], [5.0]]), np.array([0.0, 1.0, 2.0]), 1)
    assert set(out) == {"mae", "rmse", "smape", "mase", "coverage_80", "msis_80"}
    assert out["coverage_80"] == 0.5
