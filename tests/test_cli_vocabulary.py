"""`rnnlab train` and `rnnlab forecast train` speak one flag vocabulary through one parser: --overwrite
(--force kept as a deprecated alias that says so), --resume, --device auto, --quiet/--no-progress,
--seed; a missing optional dependency is the one-line "install the forecast extra" error everywhere."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys

import pytest

from rnnlab.cli import main

NAIVE = ["--model", "naive", "--horizon", "3"]
TINY_NET = ["--horizon", "3", "--hidden", "4", "--epochs", "2", "--lookback", "12", "--quiet"]


def run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own exit (usage errors, --help)
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return code, out, err


def test_force_still_overwrites_and_says_it_is_deprecated(tmp_path, capsys):
    out = tmp_path / "m"
    assert run(capsys, "forecast", "train", "sunspots", "-o", out, *NAIVE)[0] == 0
    code, _, err = run(capsys, "forecast", "train", "sunspots", "-o", out, *NAIVE)
    assert code == 2 and "pass --overwrite to replace it" in err
    code, _, err = run(capsys, "forecast", "train", "sunspots", "-o", out, *NAIVE, "--force")
    assert code == 0, err
    assert err.splitlines()[0] == "rnnlab: warning: --force is deprecated; use --overwrite"
    code, _, err = run(capsys, "forecast", "train", "sunspots", "-o", out, *NAIVE, "--overwrite")
    assert code == 0 and "deprecated" not in err


def test_forecast_device_defaults_to_auto_like_train(tmp_path, capsys):
    from rnnlab.config import TrainConfig
    from rnnlab.forecasting.config import ForecastConfig

    assert ForecastConfig().device == TrainConfig().device == "auto"
    out = tmp_path / "m"
    code, _, err = run(capsys, "forecast", "train", "air-passengers", "-o", out, *TINY_NET, "--device", "auto",
                       "--seed", "3")
    assert code == 0, err
    settings = json.loads((out / "config.json").read_text())["settings"]
    assert settings["device"] == "auto" and settings["seed"] == 3


@pytest.mark.parametrize("command", [["train", "CORPUS", "-o", "OUT"], ["forecast", "train", "sunspots", "-o", "OUT"]])
def test_both_train_commands_take_quiet_no_progress_resume_overwrite(tmp_path, command):
    from rnnlab.cli import build_parser

    argv = [str(tmp_path / "o") if a == "OUT" else a for a in command]
    for flags, expected in ((["--quiet"], (True, False, False)), (["--no-progress", "--resume"], (True, True, False)),
                            (["--overwrite"], (False, False, True))):
        args = build_parser().parse_args([*argv, *flags])
        assert (args.quiet, args.resume, args.overwrite) == expected


def test_usage_errors_of_both_commands_read_alike(capsys):
    for argv, flag in ((["train", "c.txt", "-o", "m", "--layers", "0"], "--layers"),
                       (["forecast", "train", "sunspots", "-o", "m", "--layers", "0"], "--layers")):
        code, _, err = run(capsys, *argv)
        assert code == 2 and err.startswith(f"rnnlab: error: {flag} must be at least 1 (got 0)"), err
        assert len(err.splitlines()) == 1


MISSING = "import sys; sys.modules[sys.argv[1]] = None; from rnnlab.cli import main; raise SystemExit(main(sys.argv[2:]))"


def missing(package: str, *argv) -> subprocess.CompletedProcess:
    """`rnnlab ARGV` in a fresh interpreter where `import PACKAGE` fails as if it were not installed."""
    return subprocess.run([sys.executable, "-c", MISSING, package, *map(str, argv)], capture_output=True,
                          text=True, timeout=120)


def assert_extra_error(result: subprocess.CompletedProcess, package: str) -> None:
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("rnnlab: error: ") and f"needs {package}: install the forecast extra" \
        in result.stderr and "pip install 'rnnlab[forecast]'" in result.stderr, result.stderr


@pytest.fixture(scope="module")
def naive_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("naive") / "m"
    assert main(["forecast", "train", "sunspots", "-o", str(out), *NAIVE]) == 0
    return out


@pytest.mark.parametrize("argv", [
    ["forecast", "train", "sunspots", "-o", "OUT", "--horizon", "3"],
    ["forecast", "predict", "MODEL"],
    ["forecast", "backtest", "MODEL", "--horizon", "3"],
    ["forecast", "backtest", "--model", "naive", "sunspots", "--horizon", "3"],
    ["forecast", "info", "MODEL"],
])
def test_without_pandas_every_forecast_command_says_install_the_extra(tmp_path, naive_dir, argv):
    argv = [tmp_path / "o" if a == "OUT" else naive_dir if a == "MODEL" else a for a in argv]
    assert_extra_error(missing("pandas", *argv), "pandas")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv", [
    ["forecast", "train", "CSV", "-o", "OUT", "--horizon", "3", "--model", "auto-ets"],
    ["forecast", "backtest", "--model", "auto-theta", "CSV", "--horizon", "3"],
    ["forecast", "train", "air-passengers", "-o", "OUT", "--horizon", "3", "--model", "naive"],
])
def test_without_statsforecast_its_models_and_data_say_install_the_extra(tmp_path, argv):
    csv = tmp_path / "s.csv"
    csv.write_text("y\n" + "".join(f"{i % 12 + i // 6}\n" for i in range(60)))
    argv = [tmp_path / "o" if a == "OUT" else csv if a == "CSV" else a for a in argv]
    assert_extra_error(missing("statsforecast", *argv), "statsforecast")
    assert not (tmp_path / "o").exists()


def test_text_training_never_needs_the_forecast_extra(tmp_path):
    result = missing("pandas", "train", "--help")
    assert result.returncode == 0 and "--overwrite" in result.stdout, result.stderr


# -- a flag is written once: the config field's metadata --------------------------------------------
def _options_of(argv):
    """Every optional action of the sub-command `argv` names, from the real parser."""
    from rnnlab.cli import build_parser

    parser = build_parser()
    for name in argv:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    return [a for a in parser._actions if a.option_strings and a.help not in (None, argparse.SUPPRESS)
            and a.dest != "help"]


@pytest.mark.parametrize("argv", [["train"], ["forecast", "train"], ["forecast", "backtest"]])
def test_help_shows_every_default(argv, capsys):
    actions = _options_of(argv)
    without = [a.option_strings[0] for a in actions if "default" not in a.help and a.dest not in
               ("resume", "overwrite", "quiet", "output", "model")]
    assert without == []
    code, out, _ = run(capsys, *argv, "--help")
    assert code == 0 and "--hidden N" in out and "(default: 0.003)" in out


@pytest.mark.parametrize("cls, argv", [("ModelConfig", ["train"]), ("DataConfig", ["train"]),
                                       ("TrainConfig", ["train"]), ("ForecastConfig", ["forecast", "train"])])
def test_each_flag_comes_from_its_config_field(cls, argv):
    import rnnlab.config as config

    by_dest = {a.dest: a for a in _options_of(argv)}
    for f in dataclasses.fields(getattr(config, cls)):
        if "help" not in f.metadata:
            continue
        action = by_dest[f.name]
        assert action.option_strings[0] == f.metadata["flag"]
        assert action.help.startswith(f.metadata["help"]) and action.default is None


@pytest.mark.parametrize("argv, message", [
    (["train", "c.txt", "-o", "m", "--dropout", "1.5"], "--dropout must be in [0, 1) (got 1.5)"),
    (["train", "c.txt", "-o", "m", "--cell", "tree"], "--cell must be one of lstm, gru, rnn_tanh"),
    (["train", "c.txt", "-o", "m", "--seed", "seven"], "--seed must be a whole number from 0 to 2**63 - 1"),
    (["train", "c.txt", "-o", "m", "--split", "a,b"], "--split must be three fractions like 0.9,0.05,0.05"),
    (["train", "c.txt", "-o", "m", "--epochs", "2.5"], "--epochs must be a whole number (got '2.5')"),
    (["forecast", "train", "sunspots", "-o", "m", "--samples", "5"], "--samples must be at least 10 (got 5)"),
    (["forecast", "train", "sunspots", "-o", "m", "--diff", "x"], "--diff lags must be whole numbers or 'season'"),
    (["forecast", "train", "sunspots", "-o", "m", "--intervals", "120"], "--intervals levels must lie strictly"),
    (["forecast", "backtest", "--model", "naive", "sunspots", "--origins", "0"], "--origins must be at least 1"),
])
def test_a_bad_value_is_refused_in_the_words_of_its_config(argv, message, capsys):
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.startswith(f"rnnlab: error: {message}") and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("cls, kwargs, cli", [
    ("ModelConfig", {"dropout": 1.5}, ["train", "c.txt", "-o", "m", "--dropout", "1.5"]),
    ("TrainConfig", {"lr": -1.0}, ["train", "c.txt", "-o", "m", "--lr", "-1"]),
    ("ForecastConfig", {"hidden_size": 0}, ["forecast", "train", "sunspots", "-o", "m", "--hidden", "0"]),
])
def test_the_python_api_and_the_command_line_give_one_message(cls, kwargs, cli, capsys):
    import rnnlab.config as config
    from rnnlab.errors import ConfigError

    with pytest.raises(ConfigError) as raised:
        getattr(config, cls)(**kwargs)
    code, _, err = run(capsys, *cli)
    assert code == 2 and err.startswith(f"rnnlab: error: {raised.value.message} (see ")


def test_forecast_patience_zero_never_stops_early_from_python_too():
    from rnnlab.config import ForecastConfig

    assert ForecastConfig(patience=0).patience is None


def test_a_bare_diff_means_lag_one_and_lags_parse_as_the_config_reads_them():
    from rnnlab.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["forecast", "train", "x", "-o", "m", "--diff"]).diff == (1,)
    assert parse(["forecast", "train", "x", "-o", "m", "--diff", "1,s"]).diff == (1, "season")
    assert parse(["forecast", "train", "x", "-o", "m"]).diff is None  # not typed: the config's default
