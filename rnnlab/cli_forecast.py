"""`rnnlab forecast ...`: datasets, train, predict, backtest. The command line parses and calls the API.

The top-level CLI calls `register(subparsers)`; every sub-command stores its handler in `args.func`,
which returns the exit code and lets `RnnlabError` through to the one place that catches it. `main(argv)`
runs these commands on their own (tests, `python -m rnnlab.cli_forecast`).

Results go to stdout (a CSV when no -o is given, one JSON line otherwise); diagnostics and the progress
bar to stderr. Every input is checked before anything is written.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Any

from rnnlab.cli_flags import add_config_options, add_quiet, add_run_options, whole_number
from rnnlab.config import ForecastConfig, flag_of
from rnnlab.errors import ConfigError, DataError, ModelDirError

# The ForecastConfig fields that only the network reads: each a flag of the "network" group.
NETWORK_FIELDS = ("lookback", "season_profile", "cell", "hidden_size", "layers", "patch", "dropout", "highway", "scaler",
                  "log", "diff", "window_norm", "recursive", "head", "ensemble", "combine", "epochs", "batch_size",
                  "lr", "weight_decay", "clip", "patience", "val_size", "seed", "samples", "checkpoint_every",
                  "device", "threads")
AUTO_FLAGS = {"seed", "device", "threads"}  # flags that leave the automatic choice on (they shape no network)
# (training_state.safetensors: where fits before the member folders kept their checkpoint)
MODEL_FILES = ("model.safetensors", "training_state.safetensors", "metrics.jsonl", "config.json",
               "scaler.json", "series.safetensors")


# -- parser ----------------------------------------------------------------------------------------
def _data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data (a CSV, or a dataset name from `rnnlab forecast datasets`)")
    group.add_argument("--id", metavar="COL", help="series id column of long-format data (many series, one row per "
                                                   "series and time; default: unique_id when the data has it)")
    group.add_argument("--data-dir", metavar="DIR", help="folder holding panels such as m4-hourly (default: RNNLAB_DATA_DIR)")
    group.add_argument("--time", metavar="COL", help="time column (dates or integer steps; ds is found by name in "
                                                     "long format; default: none, steps 0..T-1)")
    group.add_argument("--target", metavar="COL[,COL]", help="value column(s) to forecast, multivariate allowed (default: "
                                                                "the one numeric column)")
    group.add_argument("--covariates", metavar="COL[,COL]", help="past covariates: known up to the last observation "
                                                                    "(default: none)")
    group.add_argument("--future-covariates", metavar="COL[,COL]",
                       help="known-future covariates; rows after the last target value carry their future values "
                            "(default: none)")
    group.add_argument("--calendar", metavar="NAME[,NAME]",
                       help="calendar features derived from the dates: month, quarter, dayofweek, day, dayofyear, "
                            "weekofyear, hour, minute (default: none)")
    group.add_argument("--fill", choices=("error", "interpolate", "ffill"), default=None,
                       help="missing values: error (names the first gap), interpolate, or ffill (default: error)")
    group.add_argument("--freq", help="resample onto this pandas frequency (MS, D, h, ...): irregular time stamps "
                                      "are an error without it (default: none)")
    group.add_argument("--season-length", type=whole_number("--season-length"), metavar="M",
                       help="season length (default: from the frequency, 12 monthly, 7 daily, ...)")


def _model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", default=None, metavar="SPEC",
                       help="auto (the default with no network flags: networks and classical models compared on the "
                            "series' last H points, the best or a blend kept), rnn (the default with network "
                            "flags), lstm, gru, naive, seasonal-naive, drift, auto-arima, auto-ets, auto-theta")
    add_config_options(group, ForecastConfig, ("horizon", "intervals"))
    net = parser.add_argument_group("network (rnn, lstm, gru)")
    add_config_options(net, ForecastConfig, NETWORK_FIELDS)
    net.add_argument("--windows-per-series", type=whole_number("--windows-per-series"), metavar="N",
                     help="many series: training windows drawn from each series (default: 64)")


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add `forecast` and its sub-commands to a top-level parser's subparsers."""
    forecast = subparsers.add_parser(
        "forecast", help="forecast numeric sequences (RNN/GRU/LSTM and baselines)",
        description="Forecast numeric sequences with recurrent networks, beside classical baselines.")
    commands = forecast.add_subparsers(dest="forecast_command", metavar="COMMAND")  # the parent's Parser
    commands.required = True
    forecast.set_defaults(func=lambda args: forecast.print_help() or 2)

    datasets = commands.add_parser("datasets", help="list the named series that work offline")
    datasets.add_argument("--json", action="store_true", help="one JSON object per line")
    datasets.add_argument("--data-dir", metavar="DIR", help="also list the panels found here (e.g. m4-hourly)")
    datasets.set_defaults(func=cmd_datasets)

    train = commands.add_parser("train", help="fit a forecaster and save it to a model directory")
    train.add_argument("data", nargs="?", metavar="DATA", help="CSV file or dataset name")
    train.add_argument("-o", "--output", required=True, metavar="MODEL_DIR")
    add_run_options(train, "training")
    _model_options(train)
    _data_options(train)
    train.set_defaults(func=cmd_train)

    info = commands.add_parser("info", help="what a model directory holds (for auto: what it chose and why)")
    info.add_argument("model_dir", metavar="MODEL_DIR")
    info.set_defaults(func=cmd_info)

    predict = commands.add_parser("predict", help="forecast with a saved model")
    predict.add_argument("model_dir", metavar="MODEL_DIR")
    predict.add_argument("--data", metavar="DATA", help="history to forecast from (default: the training data); "
                                                       "read with the training run's column options")
    add_config_options(predict, ForecastConfig, ("horizon",), shown={"horizon": "the trained horizon"})
    predict.add_argument("-o", "--output", metavar="CSV", help="forecast CSV (default: stdout)")
    predict.add_argument("--plot", metavar="PNG", help="also draw history, forecast and bands (.png/.svg/.pdf; "
                                                                      "default: no plot)")
    _data_options(predict)
    predict.set_defaults(func=cmd_predict)

    backtest = commands.add_parser("backtest", help="rolling-origin evaluation with refit, for any forecaster",
                                   usage="%(prog)s (MODEL_DIR [DATA] | --model SPEC DATA) --horizon H "
                                         "[--origins K] [options]")
    backtest.add_argument("paths", nargs="+", metavar="MODEL_DIR|DATA")
    backtest.add_argument("--origins", type=whole_number("--origins"), default=3, metavar="K",
                          help="rolling origins (default: 3)")
    backtest.add_argument("--step", type=whole_number("--step", 1, "a positive number of steps"), metavar="S",
                          help="steps between origins (default: the horizon)")
    backtest.add_argument("--no-refit", action="store_true",
                          help="fit once at the first origin, then only condition on new history (default: refit "
                               "at every origin)")
    backtest.add_argument("-o", "--output", metavar="CSV", help="every forecast beside the actual values (default: none)")
    add_quiet(backtest)
    _model_options(backtest)
    _data_options(backtest)
    backtest.set_defaults(func=cmd_backtest)
    return forecast


# -- from arguments to API objects -------------------------------------------------------------------
def _data_kwargs(args: argparse.Namespace, stored: dict | None = None) -> dict:
    stored = {k: v for k, v in (stored or {}).items() if k != "dataset"}
    out = {"time": stored.get("time"), "target": stored.get("target"), "covariates": stored.get("covariates"),
           "future_covariates": stored.get("future_covariates"), "calendar": stored.get("calendar") or (),
           "fill": stored.get("fill") or "error", "freq": stored.get("freq"),
           "season_length": stored.get("season_length")}
    for name in out:
        value = getattr(args, name, None)
        if value is not None:
            out[name] = value
    return out


def _forecaster(args: argparse.Namespace, default_model: str = "auto", panel: bool = False):
    """The forecaster the flags describe; for a panel (many series) its panel form (forecasters.py)."""
    from rnnlab.forecasting.forecasters import MODELS, RNN_NAMES, make_forecaster, make_panel_forecaster

    per_series = getattr(args, "windows_per_series", None)
    if per_series is not None and not panel:
        raise ConfigError("--windows-per-series applies to many series (long-format data or a panel)")
    if panel:
        make_forecaster = functools.partial(make_panel_forecaster, windows_per_series=per_series)  # noqa: F811

    given = {name: getattr(args, name) for name in NETWORK_FIELDS if getattr(args, name) is not None}
    # No --model: the automatic choice, unless a flag shapes the network (then exactly that network).
    spec = args.model or ("rnn" if set(given) - AUTO_FLAGS else default_model)
    if spec not in MODELS:
        raise ConfigError(f"--model must be one of {', '.join(MODELS)} (got {spec!r})")
    settings: dict[str, Any] = {}
    if args.horizon is not None:
        settings["horizon"] = args.horizon
    if args.intervals is not None:
        settings["intervals"] = args.intervals
    if spec in RNN_NAMES or spec == "auto":
        if spec not in ("rnn", "auto") and "cell" in given and given["cell"] != spec:
            raise ConfigError(f"--model {spec} and --cell {given['cell']} disagree")
        settings.update(given)
        return make_forecaster(spec, progress=not args.quiet, **settings)
    if given:
        flag = flag_of(ForecastConfig, next(iter(given)))
        raise ConfigError(f"{flag} applies to the network models (--model rnn, lstm, gru), not {spec}")
    if args.season_length is not None:
        settings["season_length"] = args.season_length
    return make_forecaster(spec, **settings)


def _emit(text: str, output: str | None) -> None:
    from rnnlab import _io

    if output:
        _io.write_text(output, text)
    else:
        sys.stdout.write(text)


# -- handlers ------------------------------------------------------------------------------------------
def cmd_datasets(args: argparse.Namespace) -> int:
    from rnnlab.forecasting.datasets import list_datasets

    rows = list_datasets(args.data_dir)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    header = ("name", "length", "freq", "season_length", "start", "end", "source")
    table = [header] + [tuple(str(row[key]) for key in header) for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train under an exclusive lock on MODEL_DIR (.rnnlab.lock), so two runs never interleave."""
    from rnnlab.training import modeldir

    with modeldir.exclusive_run(Path(args.output)):
        return _cmd_train(args)


def _is_forecast_dir(directory: Path) -> bool:
    """True when config.json is one rnnlab.forecasting wrote (format_version, kind, settings)."""
    try:
        raw = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(raw, dict) and "format_version" in raw and "kind" in raw and "settings" in raw


def _cmd_train(args: argparse.Namespace) -> int:
    import time

    from rnnlab.forecasting.datasets import load_data
    from rnnlab.forecasting.rnn import RNNForecaster, remove_members
    from rnnlab.training import modeldir

    out = Path(args.output)
    started = time.time()
    if args.resume:
        forecaster = RNNForecaster.resume(out, progress=not args.quiet)
        print(json.dumps(_train_summary(forecaster, out, started)))
        return 0
    if args.data is None:
        raise ConfigError("DATA is needed (a CSV file or a dataset name), unless --resume")
    if args.horizon is None:
        raise ConfigError("--horizon is needed: how many steps to forecast")
    series = load_data(args.data, id=args.id, data_dir=args.data_dir, **_data_kwargs(args))
    forecaster = _forecaster(args, panel=isinstance(series, list))
    if not hasattr(forecaster, "save"):
        raise ConfigError(f"--model {args.model} over many series is not saved as a model; score it with "
                          "`forecast backtest --model` instead")
    if isinstance(forecaster, RNNForecaster):
        forecaster.resolve(series)  # every check that can fail, before anything is written
    if out.exists() and (not out.is_dir() or modeldir.entries(out)):
        if not args.overwrite:
            raise ModelDirError(f"{out} exists and is not empty; pass --overwrite to replace it or --resume to "
                                "continue its training")
        if not out.is_dir():
            raise ModelDirError(f"{out} exists and is not a directory")
        if not _is_forecast_dir(out):
            raise ModelDirError(f"{out} is not a forecast model directory rnnlab wrote; refusing to overwrite "
                                "it (choose another MODEL_DIR)")
        modeldir.remove_files(out, MODEL_FILES)  # only rnnlab's files; a user's others stay
        remove_members(out)  # each ensemble member's training run
        for variant in out.glob("variant-*"):  # an auto model's networks
            if variant.is_dir() and _is_forecast_dir(variant):
                modeldir.remove_files(variant, MODEL_FILES)
                remove_members(variant)
                if not modeldir.entries(variant):
                    variant.rmdir()
    if isinstance(forecaster, RNNForecaster):
        forecaster.fit(series, directory=out)
    else:
        forecaster.fit(series).save(out)
    if hasattr(forecaster, "choice") and not args.quiet:
        print(forecaster.summary(), file=sys.stderr)
    print(json.dumps(_train_summary(forecaster, out, started)))
    return 0


def _train_summary(forecaster: Any, out: Path, started: float) -> dict:
    import time

    summary = {"model_dir": str(out), "model": forecaster.name, "horizon": forecaster.horizon}
    metrics = getattr(forecaster, "metrics", None)
    if metrics:
        members = sorted({m["member"] for m in metrics})
        summary["epochs"] = [sum(1 for m in metrics if m["member"] == k) for k in members]
        vals = [min((m["val_loss"] for m in metrics if m["member"] == k and "val_loss" in m), default=None)
                for k in members]
        summary["best_val_loss"] = [None if v is None else round(v, 6) for v in vals]
        summary["lookback"] = forecaster.fitted_config.lookback
        if hasattr(forecaster, "panel"):
            summary["series"] = len(forecaster.panel)
    if getattr(forecaster, "choice", None):
        summary["choice"] = forecaster.choice["candidate"]
        summary["validation_mase"] = forecaster.validation
    summary["seconds"] = round(time.time() - started, 2)
    return summary


def cmd_info(args: argparse.Namespace) -> int:
    """What a model directory holds: its kind, settings, the data it was fitted on, and for an auto
    model the choice it made and every candidate's validation MASE."""
    from rnnlab.forecasting.forecasters import describe

    print(json.dumps({"model_dir": args.model_dir, **describe(args.model_dir)}))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from rnnlab.forecasting.datasets import load_series
    from rnnlab.forecasting.forecasters import load_forecaster

    model = load_forecaster(args.model_dir)
    if hasattr(model, "panel"):
        return _predict_panel(model, args)
    history = model.series
    series = None
    if args.data is not None:
        series = history = load_series(args.data, **_data_kwargs(args, history.source))
    elif any(getattr(args, name) is not None for name in DATA_OPTIONS):
        raise ConfigError("the data options apply to --data; without it the model forecasts from its training data")
    forecast = model.predict(args.horizon, series=series)
    text = forecast.to_frame().to_csv(float_format="%.6g")
    if args.plot:
        from rnnlab.forecasting.plot import plot_forecast

        plot_forecast(history, forecast, args.plot)
    _emit(text, args.output)
    if args.output:
        print(json.dumps({"forecast": args.output, "plot": args.plot, "model": model.name,
                          "horizon": forecast.horizon, "levels": list(forecast.levels)}))
    return 0


DATA_OPTIONS = ("time", "target", "covariates", "future_covariates", "calendar", "fill", "freq", "season_length",
                "id", "data_dir")


def _predict_panel(model: Any, args: argparse.Namespace) -> int:
    """A global model's forecasts: one CSV, the id column first, then the columns of a single series' CSV."""
    import pandas as pd

    from rnnlab.forecasting.datasets import load_data

    panel = None
    if args.data is not None:
        panel = load_data(args.data, id=args.id, data_dir=args.data_dir, **_data_kwargs(args))
        if not isinstance(panel, list):
            raise DataError("this model forecasts many series: --data must be long-format (an --id column) or a panel")
    elif any(getattr(args, name) is not None for name in DATA_OPTIONS):
        raise ConfigError("the data options apply to --data; without it the model forecasts from its training data")
    if args.plot:
        raise ConfigError("--plot draws one series; a model of many series has no single plot")
    forecasts = model.predict(args.horizon, panel)
    series = model.panel if panel is None else panel
    id_column = series[0].source.get("id") or "unique_id"
    frames = []
    for s, forecast in zip(series, forecasts):
        frame = forecast.to_frame().reset_index()
        frame.insert(0, id_column, s.name)
        frames.append(frame)
    _emit(pd.concat(frames).to_csv(index=False, float_format="%.6g"), args.output)
    if args.output:
        print(json.dumps({"forecast": args.output, "model": model.name, "series": len(series),
                          "horizon": forecasts[0].horizon, "levels": list(forecasts[0].levels)}))
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from rnnlab.forecasting.backtest import backtest
    from rnnlab.forecasting.datasets import load_data, load_series
    from rnnlab.forecasting.forecasters import load_forecaster

    if args.model is not None:
        if len(args.paths) != 1:
            raise ConfigError("with --model SPEC give one DATA argument (a CSV or a dataset name)")
        data = load_data(args.paths[0], id=args.id, data_dir=args.data_dir, **_data_kwargs(args))
        if isinstance(data, list):
            return _backtest_panel(_forecaster(args, panel=True), data, args)
        forecaster, data, stored, series = _forecaster(args), None, None, data
    else:
        if len(args.paths) > 2:
            raise ConfigError("give MODEL_DIR and optionally DATA, or --model SPEC and DATA")
        fitted = load_forecaster(args.paths[0])
        if any(getattr(args, name) is not None for name in NETWORK_FIELDS) or args.intervals is not None:
            raise ConfigError("model settings come from MODEL_DIR; use --model SPEC to backtest other settings")
        if hasattr(fitted, "panel"):
            panel = fitted.panel
            if len(args.paths) == 2:
                panel = load_data(args.paths[1], id=args.id, data_dir=args.data_dir, **_data_kwargs(args))
            fitted.progress = not args.quiet
            return _backtest_panel(fitted, panel, args)
        forecaster = fitted.clone()
        if hasattr(forecaster, "progress"):
            forecaster.progress = not args.quiet
        data, stored = (args.paths[1] if len(args.paths) == 2 else None), fitted.series.source
        if data is None:
            series = fitted.series
    if data is not None:
        series = load_series(data, **_data_kwargs(args, stored))
    result = backtest(forecaster, series, horizon=args.horizon, origins=args.origins, step=args.step,
                      refit=not args.no_refit)
    if args.output:
        _emit(result.forecasts_frame().to_csv(float_format="%.6g"), args.output)
    rounded = lambda d: {k: round(v, 6) for k, v in d.items()}  # noqa: E731
    print(json.dumps({"model": result.model, "horizon": result.horizon, "origins": len(result.cutoffs),
                      "metrics": rounded(result.summary),
                      "per_origin": [{"cutoff": str(c), **rounded(m), **_chose(f)}
                                     for c, m, f in zip(result.cutoffs, result.metrics, result.fitted)]}))
    return 0


def _backtest_panel(forecaster: Any, panel: Any, args: argparse.Namespace) -> int:
    from rnnlab.forecasting.backtest import backtest_panel

    if not isinstance(panel, list):
        raise DataError("this model forecasts many series: DATA must be long-format (an --id column) or a panel")
    if args.no_refit:
        raise ConfigError("--no-refit applies to one series; a panel is refitted at every origin")
    if args.output:
        raise ConfigError("-o (every forecast beside the actual values) applies to one series")
    result = backtest_panel(forecaster, panel, horizon=args.horizon, origins=args.origins, step=args.step)
    rounded = lambda d: {k: round(v, 6) for k, v in d.items()}  # noqa: E731
    print(json.dumps({**result, "metrics": rounded(result["metrics"]),
                      "per_series": {k: rounded(v) for k, v in result["per_series"].items()}}))
    return 0


def _chose(fitted: Any) -> dict:
    """An auto model's choice at one origin, for the backtest's report."""
    choice = getattr(fitted, "choice", None)
    return {"choice": choice["candidate"]} if choice else {}


# -- standalone entry point -------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Run `forecast ...` arguments (argv starts with "forecast") through the one `rnnlab` command line
    (rnnlab.cli.main: the same parser and error handling); returns the exit code, usage errors included."""
    from rnnlab.cli import main as rnnlab_main

    try:
        return rnnlab_main(argv)
    except SystemExit as exc:  # argparse: usage errors exit 2, --help exits 0
        return exc.code if isinstance(exc.code, int) else 2


if __name__ == "__main__":
    raise SystemExit(main())
