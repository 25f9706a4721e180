"""The real `rnnlab forecast` command line, end to end, with tiny settings."""

import json

import numpy as np
import pandas as pd
import pytest

from rnnlab.cli_forecast import main

TINY = ["--hidden", "8", "--epochs", "5", "--lookback", "12", "--no-progress"]


def run(capsys, *argv):
    code = main(["forecast", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def test_datasets_lists_length_frequency_and_season(capsys):
    code, out, _ = run(capsys, "datasets")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "length", "freq", "season_length", "start", "end", "source"]
    assert lines[1].split()[:4] == ["air-passengers", "144", "MS", "12"]
    code, out, _ = run(capsys, "datasets", "--json")
    assert {json.loads(line)["name"] for line in out.splitlines()} == {"air-passengers", "sunspots",
                                                                      "elec-equip", "co2"}


def test_train_predict_plot_and_backtest(tmp_path, capsys, monthly_csv):
    model_dir = tmp_path / "model"
    code, out, err = run(capsys, "train", monthly_csv, "-o", model_dir, "--time", "date", "--target", "sales",
                         "--horizon", "6", "--log", "--diff", "season", "--intervals", "50,90", *TINY, "--lookback", "24")
    assert code == 0, err
    summary = last_json(out)
    assert summary["horizon"] == 6 and summary["epochs"] == [5]

    code, out, err = run(capsys, "predict", model_dir, "-o", tmp_path / "fc.csv", "--plot", tmp_path / "fc.png")
    assert code == 0, err
    frame = pd.read_csv(tmp_path / "fc.csv")
    assert list(frame.columns) == ["time", "sales", "sales_lo50", "sales_hi50", "sales_lo90", "sales_hi90"]
    assert frame["time"].tolist()[:2] == ["2005-01-01", "2005-02-01"] and len(frame) == 6
    assert (frame["sales_lo90"] <= frame["sales"]).all() and (frame["sales"] <= frame["sales_hi90"]).all()
    assert (tmp_path / "fc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # predict on new data, read with the training run's column options; the CSV goes to stdout
    code, out, err = run(capsys, "predict", model_dir, "--data", monthly_csv, "--horizon", "3")
    assert code == 0, err
    assert out.splitlines()[0].startswith("time,sales,") and len(out.splitlines()) == 4

    code, out, err = run(capsys, "backtest", model_dir, "--horizon", "6", "--origins", "2")
    assert code == 0, err
    result = last_json(out)
    assert result["origins"] == 2 and {"mase", "smape", "coverage_90", "msis_90"} <= set(result["metrics"])


def test_baseline_models_through_the_same_commands(tmp_path, capsys):
    code, out, err = run(capsys, "backtest", "--model", "seasonal-naive", "air-passengers", "--horizon", "12",
                         "--origins", "3", "-o", tmp_path / "bt.csv")
    assert code == 0, err
    assert last_json(out)["metrics"]["mase"] == pytest.approx(1.213, abs=1e-3)
    assert len(pd.read_csv(tmp_path / "bt.csv")) == 36
    code, _, err = run(capsys, "train", "sunspots", "-o", tmp_path / "naive", "--model", "naive", "--horizon", "5")
    assert code == 0, err
    code, out, err = run(capsys, "predict", tmp_path / "naive")
    assert code == 0 and len(out.splitlines()) == 6
    code, _, err = run(capsys, "train", "sunspots", "-o", tmp_path / "x", "--model", "drift", "--horizon", "5",
                       "--hidden", "8")
    assert code == 2 and err == "rnnlab: error: --hidden applies to the network models (--model rnn, lstm, " \
                                "gru), not drift\n"


def test_resume_and_refusal_to_overwrite(tmp_path, capsys):
    model_dir = tmp_path / "m"
    args = ["train", "air-passengers", "-o", model_dir, "--horizon", "3", *TINY]
    assert run(capsys, *args)[0] == 0
    code, _, err = run(capsys, *args)
    assert code == 2 and "exists and is not empty; pass --overwrite" in err
    assert run(capsys, *args, "--overwrite")[0] == 0
    code, out, err = run(capsys, "train", "-o", model_dir, "--resume", "--no-progress")
    assert code == 0, err
    assert last_json(out)["epochs"] == [5]


def write(tmp_path, frame):
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    return path


BAD_INPUTS = {
    "non-numeric": (pd.DataFrame({"y": ["1", "2", "x"] * 20}), ["--target", "y"],
                    "column 'y' holds a non-numeric value 'x' (data row 3)"),
    "missing-target": (pd.DataFrame({"y": np.arange(60.0)}), ["--target", "sales"],
                       "target column 'sales' not in the data (columns: y)"),
    "too-short": (pd.DataFrame({"y": np.arange(15.0)}), ["--target", "y"],
                  "the series has 15 points, fewer than --lookback 12 + --horizon 4 = 16"),
    "nan": (pd.DataFrame({"y": [1.0, None] + list(range(58))}), ["--target", "y"],
            "target column 'y' is missing a value at 1 (1 missing in all); pass --fill interpolate or --fill ffill"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, case):
    frame, flags, message = BAD_INPUTS[case]
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "train", write(tmp_path, frame), "-o", out_dir, "--horizon", "4", *flags, *TINY)
    assert code == 2
    assert err == f"rnnlab: error: {message}\n"
    assert not out_dir.exists() and out == ""


@pytest.mark.parametrize("argv, message", [
    (["train", "air-passengers", "-o", "OUT", "--horizon", "0"], "--horizon must be a positive number of steps"),
    (["train", "air-passengers", "-o", "OUT", "--horizon", "-3"], "--horizon must be a positive number of steps"),
    (["train", "air-pasengers", "-o", "OUT", "--horizon", "3"], "unknown dataset 'air-pasengers'"),
    (["train", "air-passengers", "-o", "OUT", "--horizon", "3", "--cell", "lstm", "--model", "gru"],
     "--model gru and --cell lstm disagree"),
    (["predict", "NOPE"], "NOPE: no such model directory"),
])
def test_bad_arguments(tmp_path, capsys, argv, message):
    argv = [str(tmp_path / "out") if a == "OUT" else str(tmp_path / a) if a == "NOPE" else a for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2 and err.startswith("rnnlab: error: ") and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_future_covariates_missing_for_the_steps_asked(tmp_path, capsys):
    t = np.arange(50)
    frame = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=50, freq="D").strftime("%Y-%m-%d"),
                          "y": np.where(t < 48, 2 + np.sin(t / 3), np.nan), "temp": np.cos(t / 3)})
    path = write(tmp_path, frame)
    model_dir = tmp_path / "m"
    code, _, err = run(capsys, "train", path, "-o", model_dir, "--time", "date", "--target", "y",
                       "--future-covariates", "temp", "--horizon", "2", *TINY)
    assert code == 0, err
    short = frame.iloc[:49]  # the new data knows the covariate one step ahead only
    short_path = tmp_path / "short.csv"
    short.to_csv(short_path, index=False)
    code, out, err = run(capsys, "predict", model_dir, "--data", short_path, "-o", tmp_path / "fc.csv")
    assert code == 2
    assert err == "rnnlab: error: future covariates (temp) are known up to 2020-02-18 but a forecast of 2 " \
                  "steps needs them up to 2020-02-19\n"
    assert not (tmp_path / "fc.csv").exists()
