"""Forecasting benchmark: rnnlab's LSTM and GRU beside seasonal naive, AutoARIMA, AutoETS and AutoTheta.

    python benchmarks/forecast.py                       # the full run (about 10-30 minutes on 1-2 cores)
    python benchmarks/forecast.py --quick               # 2 seeds, fewer epochs: a smoke test
    python benchmarks/forecast.py --dev                 # the tuning protocol (see below)

Datasets and horizons: air-passengers (h=12), sunspots (h=24), elec-equip (h=24).
Protocols: "holdout" (train on all but the last h points, score those h) and "rolling" (3 origins, step h,
refit at each: the last 3h points scored in three blocks). The score is MASE, scaled by the in-sample
seasonal naive MAE of each origin's training range, averaged over origins.

rnnlab: one recipe of product options (RECIPE below, the same for every dataset, any of them settable on
the command line of `rnnlab forecast train`), trained with 5 seeds. "rnnlab" is the LSTM's median MASE
over the seeds, "rnnlab_gru" the GRU's; "rnnlab_ensemble"/"rnnlab_gru_ensemble" score the seeds combined
into one forecast, which is exactly what `--ensemble 5` trains and predicts.

Never tuned on test points: the recipe was chosen with `--dev`, which runs the same two protocols on each
series cut 3h points short, i.e. on data that ends before the first point any test protocol scores.

Output: one JSON line per dataset and protocol, then (last line) one JSON object with all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from rnnlab.forecasting import metrics  # noqa: E402
from rnnlab.forecasting.baselines import make_baseline  # noqa: E402
from rnnlab.forecasting.datasets import load_dataset  # noqa: E402
from rnnlab.forecasting.rnn import RNNForecaster  # noqa: E402

HORIZONS = {"air-passengers": 12, "sunspots": 24, "elec-equip": 24}
EXTRA = {"co2": 24}  # not scored by the benchmark; available to --dev studies with --datasets co2
CLASSICAL = ("seasonal-naive", "auto-arima", "auto-ets", "auto-theta")

# The product options the benchmark trains with (flags of `rnnlab forecast train`).
RECIPE = {
    "log": True,            # --log
    "window_norm": "last",  # --window-norm last
    "hidden_size": 32,      # --hidden 32
    "epochs": 300,          # --epochs 300
}


def cuts_for(length: int, horizon: int, protocol: str) -> list[int]:
    if protocol == "holdout":
        return [length - horizon]
    return [length - horizon * k for k in (3, 2, 1)]


def run(name: str, protocol: str, seeds: int, cells: tuple[str, ...], recipe: dict, dev: bool) -> dict:
    horizon = {**HORIZONS, **EXTRA}[name]
    series = load_dataset(name)
    if dev:
        series = series.until(len(series) - 3 * horizon)
    cuts = cuts_for(len(series), horizon, protocol)
    scores: dict[str, list[float]] = {}  # model -> MASE per origin
    seed_scores: dict[str, list[list[float]]] = {}  # cell -> [seed][origin]
    started = time.time()
    for cut in cuts:
        history, actual = series.until(cut), series.values[cut:cut + horizon]

        def score(forecast, history=history, actual=actual) -> float:
            return metrics.mase(actual, forecast.values, history.values, series.season_length)

        for kind in CLASSICAL:
            model = make_baseline(kind, horizon=horizon).fit(history)
            scores.setdefault(model.name, []).append(score(model.predict(horizon)))
        for cell in cells:
            key = "rnnlab" if cell == "lstm" else f"rnnlab_{cell}"
            model = RNNForecaster(cell=cell, horizon=horizon, ensemble=seeds, **recipe).fit(history)
            scores.setdefault(f"{key}_ensemble", []).append(score(model.predict(horizon)))
            per_seed = [score(member.predict(horizon)) for member in model.members()]
            seed_scores.setdefault(key, []).append(per_seed)
    mase = {}
    for cell in cells:
        key = "rnnlab" if cell == "lstm" else f"rnnlab_{cell}"
        by_seed = np.asarray(seed_scores[key]).mean(axis=0)  # [seeds]: each seed's protocol MASE
        mase[key] = round(float(np.median(by_seed)), 4)
        mase[f"{key}_seeds"] = [round(float(x), 4) for x in by_seed]
    for model, values in scores.items():
        mase[model] = round(float(np.mean(values)), 4)
    return {"dataset": name, "protocol": ("dev-" if dev else "") + protocol, "horizon": horizon,
            "origins": len(cuts), "mase": mase, "seconds": round(time.time() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(HORIZONS))
    parser.add_argument("--protocols", default="holdout,rolling")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--cells", default="lstm,gru")
    parser.add_argument("--quick", action="store_true", help="2 seeds and 60 epochs: a smoke test")
    parser.add_argument("--dev", action="store_true", help="score on the series cut 3h points short (tuning)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="override a recipe setting, e.g. --set hidden_size=16 (for --dev studies)")
    parser.add_argument("--out", help="also append the JSON lines to this file")
    args = parser.parse_args(argv)
    recipe = dict(RECIPE)
    for item in args.set:
        key, _, value = item.partition("=")
        recipe[key] = json.loads(value)
        if isinstance(recipe[key], list):
            recipe[key] = tuple(recipe[key])
    seeds = args.seeds
    if args.quick:
        seeds, recipe["epochs"] = min(seeds, 2), min(recipe.get("epochs", 60), 60)
    results = []
    sink = open(args.out, "a", encoding="utf-8") if args.out else None  # noqa: SIM115
    try:
        for name in args.datasets.split(","):
            for protocol in args.protocols.split(","):
                result = run(name, protocol, seeds, tuple(args.cells.split(",")), recipe, args.dev)
                line = json.dumps(result)
                print(line, flush=True)
                if sink:
                    sink.write(line + "\n")
                    sink.flush()
                results.append(result)
        summary = {"benchmark": "forecast", "seeds": seeds, "recipe": {k: list(v) if isinstance(v, tuple) else v
                                                                      for k, v in recipe.items()},
                   "dev": args.dev, "results": results}
        print(json.dumps(summary), flush=True)
        if sink:
            sink.write(json.dumps(summary) + "\n")
    finally:
        if sink:
            sink.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
