"""Many series, one model: long-format input, one global network with per-series scaling, one forecast CSV
with the id column first, a backtest that scores every series, and the M4 Hourly panel."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnnlab.cli_forecast import main
from rnnlab.errors import DataError
from rnnlab.forecasting.forecasters import load_forecaster
from rnnlab.forecasting.panel import GlobalForecaster, panel_from_frame

TINY = dict(hidden_size=8, epochs=3, patience=None, lookback=24)
M4 = Path(__file__).resolve().parents[3] / "shared" / "data" / "m4"  # ../shared/data/m4 from the repository


def long_frame(scales=(1.0, 1000.0, 50.0), length=80, dates=True):
    rows = []
    for k, scale in enumerate(scales):
        t = np.arange(length)
        y = scale * (10 + 3 * np.sin(2 * np.pi * (t + k) / 12) + 0.05 * t)
        ds = pd.date_range("2020-01-01", periods=length, freq="D").strftime("%Y-%m-%d") if dates else t
        rows.append(pd.DataFrame({"unique_id": f"s{k}", "ds": ds, "y": y}))
    return pd.concat(rows, ignore_index=True)


def test_long_format_columns_found_by_name_or_named():
    panel = panel_from_frame(long_frame(dates=False))
    assert [s.name for s in panel] == ["s0", "s1", "s2"] and all(len(s) == 80 for s in panel)
    renamed = long_frame().rename(columns={"unique_id": "store", "ds": "day", "y": "sales"})
    panel = panel_from_frame(renamed, id="store", time="day", target="sales", season_length=12)
    assert panel[0].freq == "D" and panel[0].season_length == 12 and panel[1].columns == ("sales",)
    with pytest.raises(DataError, match="long-format data needs --id"):
        panel_from_frame(renamed)


def test_one_network_over_every_series_each_in_its_own_scale(tmp_path):
    panel = panel_from_frame(long_frame(), season_length=12)
    model = GlobalForecaster(horizon=6, windows_per_series=20, **TINY).fit(panel)
    assert len(model.core.networks) == 1
    forecasts = model.predict()
    assert [f.index[0] for f in forecasts] == [pd.Timestamp("2020-03-21")] * 3
    levels = [float(np.median(f.values)) for f in forecasts]
    assert 5 < levels[0] < 25 and 5000 < levels[1] < 25000  # per-series scaling: no series swamps another
    model.save(tmp_path / "g")
    loaded = load_forecaster(tmp_path / "g")
    for a, b in zip(loaded.predict(), forecasts):
        np.testing.assert_allclose(a.values, b.values, rtol=1e-6)


def run(capsys, *argv):
    code = main(["forecast", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_trains_predicts_and_backtests_many_series(tmp_path, capsys):
    path = tmp_path / "long.csv"
    long_frame().to_csv(path, index=False)
    model_dir = tmp_path / "m"
    code, out, err = run(capsys, "train", path, "-o", model_dir, "--horizon", "4", "--hidden", "8", "--epochs", "2",
                         "--lookback", "24", "--windows-per-series", "10", "--no-progress")
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["series"] == 3
    code, out, err = run(capsys, "predict", model_dir, "-o", tmp_path / "fc.csv")
    assert code == 0, err
    frame = pd.read_csv(tmp_path / "fc.csv")
    assert list(frame.columns) == ["unique_id", "time", "y", "y_lo80", "y_hi80", "y_lo95", "y_hi95"]
    assert frame["unique_id"].tolist() == ["s0"] * 4 + ["s1"] * 4 + ["s2"] * 4
    code, out, err = run(capsys, "backtest", "--model", "seasonal-naive", path, "--horizon", "4", "--origins", "2")
    assert code == 0, err
    result = json.loads(out)
    assert set(result["per_series"]) == {"s0", "s1", "s2"} and result["series"] == 3
    assert result["metrics"]["mase"] == pytest.approx(np.mean([v["mase"] for v in result["per_series"].values()]))
    code, out, err = run(capsys, "backtest", model_dir, "--horizon", "4", "--origins", "2", "--no-progress")
    assert code == 0, err
    assert set(json.loads(out)["per_series"]) == {"s0", "s1", "s2"}
    code, _, err = run(capsys, "predict", model_dir, "--plot", tmp_path / "x.png")
    assert code == 2 and "--plot draws one series" in err


def test_m4_files_are_verified(tmp_path, capsys):
    (tmp_path / "Hourly-train.csv").write_text('"V1","V2"\n"H1","1"\n')
    code, _, err = run(capsys, "train", "m4-hourly", "-o", tmp_path / "m", "--horizon", "48",
                       "--data-dir", tmp_path)
    assert code == 2 and "is not M4's published Hourly-train.csv" in err and len(err.splitlines()) == 1
    code, out, _ = run(capsys, "datasets", "--data-dir", tmp_path)
    assert code == 0 and "m4-hourly" not in out


@pytest.mark.skipif(not (M4 / "Hourly-train.csv").is_file(), reason="M4 Hourly is not in ../shared/data/m4")
def test_datasets_lists_m4_hourly_from_the_data_dir(capsys):
    code, out, _ = run(capsys, "datasets", "--json", "--data-dir", M4)
    rows = {json.loads(line)["name"]: json.loads(line) for line in out.splitlines()}
    assert code == 0 and rows["m4-hourly"]["series"] == 414 and rows["m4-hourly"]["season_length"] == 24


def test_a_missing_forecast_extra_is_one_line_on_every_command(tmp_path):
    import subprocess
    import sys

    script = ("import sys; sys.modules['pandas'] = None; from rnnlab.cli_forecast import main; "
              "raise SystemExit(main(sys.argv[1:]))")
    for argv in (["backtest", "--model", "naive", "sunspots", "--horizon", "3"],
                 ["train", "sunspots", "-o", str(tmp_path / "m"), "--horizon", "3"],
                 ["predict", str(tmp_path / "m")], ["info", str(tmp_path / "m")]):
        result = subprocess.run([sys.executable, "-c", script, "forecast", *argv], capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 2, (argv, result.stderr)
        assert result.stderr.startswith("rnnlab: error: ") and len(result.stderr.splitlines()) == 1, result.stderr
        assert "rnnlab[forecast]" in result.stderr or "no such model directory" in result.stderr
