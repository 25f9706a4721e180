"""Reproduce rnnlab's pretrained default model (see rnnlab/pretrained/default/MODEL_CARD.md).

    python scripts/train_default_model.py --data-dir ../shared/data --stage1-minutes 100 --stage2-minutes 10

The model is exported into WORK/export; pass `--export rnnlab/pretrained/default` to replace the
packaged model (only the files this script writes there are replaced).

The Jungle Book is cut as ../shared/data/README.md says: the first 90% of the cleaned text is for
training, the last 10% is the held-out test split that nothing here trains or selects on. The last 5%
of the training part is carved out as the validation slice that chooses the checkpoint (and, in
stage 1, the one that watches the pretraining).

Stage 1 pretrains on ../shared/data/pretrain/ (123 public-domain books, 69 MB: other works of Kipling
and period fiction; none holds the Jungle Book; provenance and checksums in its SOURCES.md), read as the
folder it is: each file's Gutenberg header and footer stripped, files joined by the start-of-text
newline, and the one Latin-1 byte read as U+FFFD (`errors="replace"`, rnnlab's `--errors replace`).
Stage 2 fine-tunes on the Jungle Book training part alone (`--init-from`; characters the books lacked
extend the vocabulary). Each stage is an ordinary `rnnlab.train` call, so the recipe is the product's own
options; `--precision auto` (the default here) runs the matrix products in bfloat16 where the CPU has
oneDNN's bf16 kernels (the shipped model was trained so, on a CPU with native bf16) and in fp32 elsewhere.
The result is exported with fp16 weights (half the size; computation stays fp32).

`--stage1-option NAME=VALUE` overrides one of stage 1's settings the same way (e.g. dropout=0.1).

Tuning stage 2 (on the validation slice only): `--stage2-option NAME=VALUE` overrides one of its settings
(rnnlab.train's names, repeatable), `--stage2-name` keeps each variant in its own folder, and `--tune` stops
after stage 2 and prints its validation figure, never a test figure. A finished stage (its summary.json
written) is reused, not retrained, so the chosen variant is then exported by the same command without
`--tune`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

import rnnlab
from rnnlab import _io
from rnnlab.data.corpus import read_corpus
from rnnlab.training import checkpoint as ckpt
from rnnlab.training import loop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import jungle_book_split, parse_option  # noqa: E402  (NAME=VALUE typed as rnnlab's config field NAME)

DYNAMIC_LRS = (0.03, 0.1, 0.3, 1.0)


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--work", default=str(ROOT / "runs" / "default-model"))
    p.add_argument("--stage1-minutes", type=float, default=100)
    p.add_argument("--stage2-minutes", type=float, default=10)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="auto: bf16 where the CPU has oneDNN's bf16 kernels (or on CUDA), else fp32")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: rnnlab's choice)")
    p.add_argument("--export", default=None,
                   help="where to export the model (default WORK/export; the packaged model is "
                        "rnnlab/pretrained/default)")
    p.add_argument("--stage1-option", action="append", default=[], metavar="NAME=VALUE",
                   help="override one of stage 1's settings (repeatable), e.g. dropout=0.1")
    p.add_argument("--stage2-option", action="append", default=[], metavar="NAME=VALUE",
                   help="override one of stage 2's settings (repeatable), e.g. lr=1e-3")
    p.add_argument("--stage2-name", default="stage2", help="stage 2's folder under WORK (one per variant)")
    p.add_argument("--tune", action="store_true",
                   help="stop after stage 2 and print its validation bits per character (no test figure)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.precision == "auto":
        args.precision = "bf16" if torch.cuda.is_available() or loop.cpu_has_bf16_kernels() else "fp32"
    data = Path(args.data_dir)
    work = Path(args.work)
    splits = work / "splits"
    jungle = read_corpus(data / "jungle-book.txt")
    train_part, test = jungle_book_split(jungle)
    n_val = len(train_part) // 20
    train, valid = train_part[:-n_val], train_part[-n_val:]
    splits.mkdir(parents=True, exist_ok=True)
    _io.write_text(splits / "jungle-train.txt", train)
    _io.write_text(splits / "jungle-valid.txt", valid)
    _io.write_text(splits / "jungle-test.txt", test)

    common = dict(cell="lstm", layers=2, hidden_size=args.hidden, embedding_size=64, batch_size=64,
                  seq_len=128, sample_every=0, progress=False, log=log, val_file=splits / "jungle-valid.txt",
                  epochs=None, precision=args.precision)
    stage1 = work / "stage1"
    if (stage1 / ckpt.SUMMARY).exists():
        log("stage 1 already done")
    elif (stage1 / ckpt.TRAINING_STATE).exists():
        rnnlab.train(data / "pretrain", stage1, resume=True, log=log, progress=False,
                     val_file=splits / "jungle-valid.txt")
    else:
        # Plenty of text and about one pass over it: nothing to regularise. A model pretrained without
        # dropout is fine-tuned without it too (0.3 undid stage 1: benchmarks/results/default-model-stage2.jsonl).
        settings = dict(errors="replace", dropout=0.0, lr=2e-3, warmup_steps=100, weight_decay=0.01,
                        max_time=args.stage1_minutes, patience=None, seed=0, eval_every=500,
                        checkpoint_every=500, **common)
        settings.update(parse_option(item) for item in args.stage1_option)
        rnnlab.train(data / "pretrain", stage1, overwrite=True, **settings)
    stage2 = work / args.stage2_name
    if (stage2 / ckpt.SUMMARY).exists():
        log(f"{args.stage2_name} already done")
        lm = rnnlab.load(stage2)
    else:
        settings = dict(dropout=0.0, lr=1e-3, warmup_steps=0, weight_decay=0.01, max_time=args.stage2_minutes,
                        patience=4, seed=1, eval_every=100, checkpoint_every=100, **common)
        settings.update(parse_option(item) for item in args.stage2_option)
        lm = rnnlab.train(splits / "jungle-train.txt", stage2, overwrite=True, init_from=stage1, **settings)
    if args.tune:
        valid = lm.evaluate(splits / "jungle-valid.txt")["bpc"]
        print(json.dumps({"stage2": args.stage2_name, "options": args.stage2_option, "valid_bpc": round(valid, 4),
                          "summary": json.loads((stage2 / ckpt.SUMMARY).read_text())}), flush=True)
        return
    minutes = sum(json.loads((stage / ckpt.SUMMARY).read_text())["seconds"] for stage in (stage1, stage2)) / 60
    test_metrics = lm.evaluate(splits / "jungle-test.txt")
    valid_metrics = lm.evaluate(splits / "jungle-valid.txt")
    result = {"test_bpc": round(test_metrics["bpc"], 4), "valid_bpc": round(valid_metrics["bpc"], 4),
              "train_minutes": round(minutes, 1), "threads": torch.get_num_threads(),
              "parameters": lm.info()["parameters"]["total"]}
    # Only the files written here are replaced: the folder may hold other things (the model card).
    export = Path(args.export) if args.export else work / "export"
    export.mkdir(parents=True, exist_ok=True)
    for name in (ckpt.TOKENIZER, ckpt.SUMMARY, ckpt.METRICS):
        shutil.copyfile(stage2 / name, export / name)
    # The shipped config names its corpus, not a path of the machine that trained it.
    config = json.loads((stage2 / ckpt.CONFIG).read_text())
    config["corpus"]["source"] = ("jungle-book (the training split of scripts/train_default_model.py), "
                                  "after pretraining on ../shared/data/pretrain")
    _io.write_json(export / ckpt.CONFIG, config)
    ckpt.save_weights(export / ckpt.WEIGHTS, lm.model, dtype=torch.float16)
    exported = rnnlab.load(export)
    result["test_bpc_exported_fp16"] = round(exported.evaluate(splits / "jungle-test.txt")["bpc"], 4)
    # Dynamic evaluation's step size is chosen on the validation slice; the test split is scored once with it.
    by_lr = {lr: exported.evaluate(splits / "jungle-valid.txt", dynamic=True, dynamic_lr=lr)["bpc"]
             for lr in DYNAMIC_LRS}
    best_lr = min(by_lr, key=by_lr.get)
    result["valid_bpc_dynamic"] = round(by_lr[best_lr], 4)
    result["dynamic_lr"] = best_lr
    result["dynamic_lr_chosen_on"] = "validation slice, from " + ", ".join(f"{lr:g}" for lr in DYNAMIC_LRS)
    result["test_bpc_dynamic"] = round(
        exported.evaluate(splits / "jungle-test.txt", dynamic=True, dynamic_lr=best_lr)["bpc"], 4)
    result["mowgli_continued_as_word_of_20"] = sum(
        exported.generate("Mowgli", length=2, seed=seed)[6:7].isalpha() for seed in range(20))
    result["stage1"] = json.loads((stage1 / ckpt.SUMMARY).read_text())
    result["stage2"] = json.loads((stage2 / ckpt.SUMMARY).read_text())
    _io.write_json(export / "evaluation.json", result)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
