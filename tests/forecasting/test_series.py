import numpy as np
import pandas as pd
import pytest

from rnnlab.errors import ConfigError, DataError
from rnnlab.forecasting.datasets import DATASETS, load_dataset, load_series
from rnnlab.forecasting.series import calendar_matrix, from_array, read_csv, season_length_of


def write(tmp_path, frame, name="data.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_csv_with_time_target_and_covariates(monthly_csv):
    series = read_csv(monthly_csv, time="date", target="sales", covariates="visits", future_covariates="promo")
    assert len(series) == 60 and series.dim == 1
    assert series.freq == "MS" and series.season_length == 12
    assert series.index[0] == pd.Timestamp("2000-01-01")
    assert series.past_covariates.shape == (60, 1) and series.future_covariates.shape == (60, 1)
    assert series.values[1, 0] == pytest.approx(101 + 10 * np.sin(2 * np.pi / 12))
    assert series.source["target"] == ["sales"]


def test_multivariate_target(monthly_csv):
    series = read_csv(monthly_csv, time="date", target="sales,visits")
    assert series.values.shape == (60, 2) and series.columns == ("sales", "visits")


def test_future_rows_after_the_last_target_are_known_future_covariates(tmp_path):
    frame = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=10, freq="D"),
                          "y": [1.0, 2, 3, 4, 5, 6, 7, 8, None, None], "hol": [0, 1] * 5})
    series = read_csv(write(tmp_path, frame), time="date", target="y", future_covariates="hol")
    assert len(series) == 8 and series.future_known == 2
    assert series.future_matrix(2).shape == (10, 1)
    with pytest.raises(DataError, match="known up to 2020-01-10.*up to 2020-01-11"):
        series.future_matrix(3)


def test_non_numeric_value_is_named(tmp_path):
    frame = pd.DataFrame({"y": ["1", "2", "abc", "4"]})
    with pytest.raises(DataError, match="column 'y' holds a non-numeric value 'abc' \\(data row 3\\)"):
        read_csv(write(tmp_path, frame), target="y")


def test_missing_target_column(monthly_csv):
    with pytest.raises(DataError, match="target column 'revenue' not in the data"):
        read_csv(monthly_csv, time="date", target="revenue")


def test_nan_without_fill_names_the_first_gap(tmp_path):
    frame = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=6, freq="D"),
                          "y": [1.0, None, 3.0, None, 5.0, 6.0]})
    with pytest.raises(DataError, match="'y' is missing a value at 2020-01-02.*2 missing.*--fill"):
        read_csv(write(tmp_path, frame), time="date", target="y")


def test_fill_policies(tmp_path):
    frame = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=5, freq="D"),
                          "y": [None, 2.0, None, 6.0, 7.0]})
    path = write(tmp_path, frame)
    assert read_csv(path, time="date", target="y", fill="interpolate").values[:, 0].tolist() == [2, 2, 4, 6, 7]
    assert read_csv(path, time="date", target="y", fill="ffill").values[:, 0].tolist() == [2, 2, 2, 6, 7]


def test_irregular_timestamps_are_an_error_unless_resampled(tmp_path):
    dates = pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-07", "2020-01-08"])
    frame = pd.DataFrame({"date": dates, "y": [1.0, 2, 3, 4, 5]})
    path = write(tmp_path, frame)
    with pytest.raises(DataError, match="irregular time stamps.*--freq"):
        read_csv(path, time="date", target="y")
    series = read_csv(path, time="date", target="y", freq="D", fill="interpolate")
    assert len(series) == 8 and series.values[:, 0].tolist() == [1, 2, 3, 3.25, 3.5, 3.75, 4, 5]
    assert series.season_length == 7


def test_integer_time_column_is_a_step_grid(tmp_path):
    frame = pd.DataFrame({"year": [1990, 1991, 1992, 1993], "y": [1.0, 2, 3, 4]})
    series = read_csv(write(tmp_path, frame), time="year", target="y")
    assert list(series.index) == [1990, 1991, 1992, 1993]
    assert list(series.future_times(2)) == [1994, 1995]


def test_unsorted_rows_are_sorted_and_duplicates_rejected(tmp_path):
    frame = pd.DataFrame({"date": ["2020-01-03", "2020-01-01", "2020-01-02"], "y": [3.0, 1.0, 2.0]})
    assert read_csv(write(tmp_path, frame), time="date", target="y").values[:, 0].tolist() == [1, 2, 3]
    frame = pd.DataFrame({"date": ["2020-01-01", "2020-01-01", "2020-01-02"], "y": [3.0, 1.0, 2.0]})
    with pytest.raises(DataError, match="repeats 2020-01-01"):
        read_csv(write(tmp_path, frame), time="date", target="y")


def test_calendar_features_are_cyclic_pairs():
    index = pd.date_range("2021-01-01", periods=12, freq="MS")
    matrix = calendar_matrix(index, ("month",))
    assert matrix.shape == (12, 2)
    np.testing.assert_allclose(matrix[0], [0.0, 1.0], atol=1e-12)  # January: angle 0
    np.testing.assert_allclose(matrix[3], [1.0, 0.0], atol=1e-12)  # April: a quarter turn
    series = from_array(np.arange(24.0), start="2021-01-01", freq="MS", calendar=("month",))
    assert series.n_future == 2 and series.future_matrix(6).shape == (30, 2)


def test_from_array_and_errors():
    series = from_array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    assert series.columns == ("y0", "y1") and isinstance(series.index, pd.RangeIndex)
    with pytest.raises(DataError, match="non-numeric"):
        from_array(["a", "b"])
    with pytest.raises(DataError, match="missing a value"):
        from_array([1.0, np.nan, 3.0])
    with pytest.raises(ConfigError, match="--calendar: unknown feature 'moon'"):
        from_array([1.0, 2.0], calendar=("moon",))


def test_season_length_from_frequency():
    assert [season_length_of(f) for f in ("MS", "ME", "QS", "W-SUN", "D", "h", "YS-JAN", "2D", None)] == \
        [12, 12, 4, 52, 7, 24, 1, 1, 1]


def test_named_datasets_load_offline():
    expected = {"air-passengers": (144, 12), "sunspots": (309, 11), "elec-equip": (257, 12), "co2": (526, 12)}
    for name, (length, season) in expected.items():
        series = load_dataset(name)
        assert (len(series), series.season_length) == (length, season), name
        assert np.isfinite(series.values).all()
    assert set(DATASETS) == set(expected)
    assert load_dataset("air-passengers").values[:3, 0].tolist() == [112, 118, 132]


def test_load_series_resolves_files_and_names(monthly_csv):
    assert len(load_series(monthly_csv, time="date", target="sales")) == 60
    assert load_series("air-passengers", calendar="month").n_future == 2
    with pytest.raises(DataError, match="unknown dataset 'air-pasengers'"):
        load_series("air-pasengers")
    with pytest.raises(DataError, match="no such file"):
        load_series("missing.csv")
