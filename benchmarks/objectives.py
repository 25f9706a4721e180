"""Why rnnlab trains with the sequence objective: the Keras tutorial's window setup against it, same LSTM.

    python benchmarks/objectives.py --minutes 3 [--threads 1] [--out benchmarks/results/objectives-3min.json]

Corpus: the Jungle Book, cleaned and split as ../shared/data/README.md says (the first 90% of characters
train, the rest is the test split). Checkpoints are chosen on a validation slice carved from the END of
the training 90% (the last `--valid-chars` characters), never on the test split:

    |<-------------------- first floor(0.9 n) characters -------------------->|<---- last 10% ---->|
    |<----------------- train ----------------->|<- validation (selection) ->|<- test (reported) ->|

Two character-level runs, each for `--minutes` of wall clock on `--threads` CPU threads:
  (a) window  the tutorial setup: 50 characters one-hot -> the next one (stride 1), one LSTM of 128,
              batch 128, no dropout (Keras' LSTM text-generation example, with window 50);
  (b) sequence rnnlab's defaults (truncated BPTT, embedding 128, batch 32, seq-len 64, dropout 0.4),
              with the same LSTM: one layer of 128.
Both use rnnlab's optimiser and schedule (AdamW, lr 3e-3, warmup, cosine over the time budget), so the
objective (and the input encoding that goes with it) is what differs.

Each run evaluates on the validation slice every `eval_every` steps; metrics.jsonl's `seconds` (wall
clock since the run started) gives the time a run first reached a validation bpc. Those seconds include
the evaluations, and scoring with a window model re-reads 50 characters per character scored, so the
benchmark also times every evaluation pass and subtracts it: `speedup_to_equal_bpc` compares training
time only ((a)'s time to its best validation bpc over (b)'s time to the same bpc);
`speedup_to_equal_bpc_with_evaluations` is the same ratio from the raw `seconds`. The budget (max_time)
counts evaluations too, so (a) evaluates rarely. The test bpc of both kept models (`bpc_window`,
`bpc_sequence`) confirms the ranking on text neither run selected on. The last line of stdout is one
JSON object (also written to `--out`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, emit, jungle_book_split  # noqa: E402

import rnnlab  # noqa: E402
from rnnlab import api as rnnlab_api  # noqa: E402
from rnnlab.data.corpus import read_corpus  # noqa: E402
from rnnlab.training import checkpoint as ckpt  # noqa: E402

WINDOW_SETUP = {"objective": "window", "window": 50, "stride": 1, "input": "onehot", "cell": "lstm",
                "layers": 1, "hidden_size": 128, "batch_size": 128, "dropout": 0.0}
SEQUENCE_SETUP = {"objective": "sequence", "cell": "lstm", "layers": 1, "hidden_size": 128}


def carve_splits(text: str, valid_chars: int) -> tuple[str, str, str]:
    """(train, validation, test): the README's 90/10 split, validation taken from the end of the 90%."""
    train_all, test = jungle_book_split(text)
    if not 0 < valid_chars < len(train_all) // 2:
        raise ValueError(f"--valid-chars must be in (0, {len(train_all) // 2}) (got {valid_chars})")
    return train_all[:-valid_chars], train_all[-valid_chars:], test


def time_to_reach(records: list[dict], target_bpc: float, key: str = "seconds") -> float | None:
    """`key` at the first evaluation whose validation bpc is at or below `target_bpc` (None: never)."""
    for record in records:
        if record["val_bpc"] <= target_bpc:
            return float(record[key])
    return None


class _EvalClock:
    """Times each validation pass, so training time can be told apart from evaluation time.

    metrics.jsonl's `seconds` includes the evaluations, and a window model's evaluation re-reads 50
    characters per scored character (about 50 times a sequence model's cost), so raw `seconds` would
    charge the window run for being measured. api.train calls `evaluate_ids` through its module
    globals; wrapping it there records each pass's duration without changing what is computed.
    """

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._inner = rnnlab_api.evaluate_ids

    def __enter__(self) -> _EvalClock:
        def timed(*args, **kwargs):
            tick = time.monotonic()
            try:
                return self._inner(*args, **kwargs)
            finally:
                self.durations.append(time.monotonic() - tick)

        rnnlab_api.evaluate_ids = timed
        return self

    def __exit__(self, *exc) -> None:
        rnnlab_api.evaluate_ids = self._inner


def training_seconds(records: list[dict], eval_durations: list[float]) -> list[float]:
    """Each record's `seconds` less the evaluations up to and including it (its own is inside it)."""
    if len(eval_durations) != len(records):
        raise ValueError(f"{len(records)} evaluations logged but {len(eval_durations)} timed")
    out, spent = [], 0.0
    for record, duration in zip(records, eval_durations):
        spent += duration
        out.append(round(record["seconds"] - spent, 2))
    return out


def parse_options(items: list[str]) -> dict:
    """["warmup_steps=0", "lr=5e-3"] -> {"warmup_steps": 0, "lr": 0.005} (JSON values, else strings)."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--sequence-option expects NAME=VALUE (got {item!r})")
        try:
            out[name] = json.loads(value)
        except json.JSONDecodeError:
            out[name] = value
    return out


def warm_up() -> None:
    """One tiny LSTM step with AdamW, so lazy imports on first use are not charged to the first run."""
    from rnnlab.config import ModelConfig, TrainConfig
    from rnnlab.models.rnn_lm import RNNLanguageModel
    from rnnlab.training.optim import make_optimizer

    model = RNNLanguageModel(ModelConfig(vocab_size=8, layers=1, hidden_size=8, embedding_size=8))
    optimizer = make_optimizer(model.parameters(), TrainConfig())
    logits, _ = model(torch.zeros(2, 4, dtype=torch.long))
    logits.sum().backward()
    optimizer.step()


def run(name: str, setup: dict, files: dict[str, Path], out_dir: Path, minutes: float, eval_every: int,
        seed: int, log) -> dict:
    started = time.monotonic()
    with _EvalClock() as clock:
        lm = rnnlab.train(files["train"], out_dir, val_file=files["valid"], test_file=files["test"],
                          overwrite=True, epochs=None, max_time=minutes, eval_every=eval_every,
                          patience=None, sample_every=0, checkpoint_every=10**9, seed=seed, device="cpu",
                          progress=False, log=log, **setup)
    wall = time.monotonic() - started
    records = ckpt.read_metrics(out_dir)
    for record, seconds in zip(records, training_seconds(records, clock.durations)):
        record["train_seconds"] = seconds
    best = min(records, key=lambda r: r["val_bpc"])
    test = lm.evaluate(files["test"])
    return {"name": name, "setup": setup, "steps": records[-1]["step"], "evaluations": len(records),
            "seconds": records[-1]["seconds"], "train_seconds": records[-1]["train_seconds"],
            "eval_seconds": round(sum(clock.durations), 1), "wall_seconds": round(wall, 1),
            "best_val_bpc": best["val_bpc"], "best_step": best["step"],
            "best_seconds": best["seconds"], "best_train_seconds": best["train_seconds"],
            "test_bpc": test["bpc"], "test_tokens": test["tokens"],
            # (seconds with evaluations, seconds of training only, validation bpc) per evaluation
            "curve": [(r["seconds"], r["train_seconds"], round(r["val_bpc"], 4)) for r in records]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="training time of each run")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1)")
    parser.add_argument("--valid-chars", type=int, default=5_000,
                        help="validation slice carved from the end of the training 90%%")
    parser.add_argument("--eval-every-window", type=int, default=150, help="steps between evaluations of (a)")
    parser.add_argument("--eval-every-sequence", type=int, default=10, help="steps between evaluations of (b)")
    parser.add_argument("--sequence-option", action="append", default=[], metavar="NAME=VALUE",
                        help="override one of (b)'s training options, e.g. warmup_steps=0 (repeatable; "
                             "the default is rnnlab's defaults)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=str(SHARED_DATA), help="folder holding jungle-book.txt")
    parser.add_argument("--work-dir", default=None, help="keep the two model directories here")
    parser.add_argument("--out", default=None, help="also write the JSON result to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sequence_setup = {**SEQUENCE_SETUP, **parse_options(args.sequence_option)}

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    warm_up()
    text = read_corpus(Path(args.data_dir) / "jungle-book.txt")
    train, valid, test = carve_splits(text, args.valid_chars)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work_dir) if args.work_dir else Path(tmp)
        files = {}
        for split, part in (("train", train), ("valid", valid), ("test", test)):
            files[split] = Path(tmp) / f"{split}.txt"
            files[split].write_text(part, encoding="utf-8")
        log(f"jungle book: {len(train):,} train / {len(valid):,} validation / {len(test):,} test characters; "
            f"{args.minutes} min per run on {args.threads} thread(s)")
        log("(a) window objective, the tutorial setup")
        window = run("window", WINDOW_SETUP, files, work / "window", args.minutes, args.eval_every_window,
                     args.seed, log)
        log("(b) sequence objective, rnnlab's defaults")
        sequence = run("sequence", sequence_setup, files, work / "sequence", args.minutes,
                       args.eval_every_sequence, args.seed, log)

    target = window["best_val_bpc"]
    curve = [{"seconds": s, "train_seconds": t, "val_bpc": b} for s, t, b in sequence["curve"]]
    t_window = window["best_train_seconds"]
    t_sequence = time_to_reach(curve, target, "train_seconds")
    t_window_raw, t_sequence_raw = window["best_seconds"], time_to_reach(curve, target, "seconds")
    result = {
        "bpc_window": round(window["test_bpc"], 4),
        "bpc_sequence": round(sequence["test_bpc"], 4),
        "speedup_to_equal_bpc": round(t_window / t_sequence, 1) if t_sequence else None,
        "target_val_bpc": round(target, 4),
        "train_seconds_to_target_window": t_window,
        "train_seconds_to_target_sequence": t_sequence,
        # The same with evaluation time left in (metrics.jsonl's raw `seconds`).
        "seconds_to_target_window": t_window_raw,
        "seconds_to_target_sequence": t_sequence_raw,
        "speedup_to_equal_bpc_with_evaluations": round(t_window_raw / t_sequence_raw, 1)
        if t_sequence_raw else None,
        "val_bpc_window": round(window["best_val_bpc"], 4),
        "val_bpc_sequence": round(sequence["best_val_bpc"], 4),
        "minutes_per_run": args.minutes, "threads": args.threads,
        "chars": {"train": len(train), "valid": len(valid), "test": len(test)},
        "runs": {"window": window, "sequence": sequence},
    }
    log(f"test bpc: window {result['bpc_window']}, sequence {result['bpc_sequence']}; validation bpc "
        f"{target:.4f} reached after {t_window} s of training by the window run and {t_sequence} s by "
        f"the sequence run (speed-up {result['speedup_to_equal_bpc']}x; "
        f"{result['speedup_to_equal_bpc_with_evaluations']}x counting evaluation time)")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    emit(result)
    return result


if __name__ == "__main__":
    main()
