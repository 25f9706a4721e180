"""The `rnnlab` command line: it parses arguments and calls the API, nothing more.

Results go to stdout, diagnostics (progress, evaluation lines) to stderr. A problem the user can fix is
an RnnlabError, printed here once as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any

from rnnlab.cli_flags import Parser as _Parser
from rnnlab.cli_flags import add_config_options, add_run_options
from rnnlab.config import DataConfig, ModelConfig, SampleConfig, TrainConfig
from rnnlab.errors import RnnlabError

# Every character str.splitlines breaks at: a path or value a user typed may hold one, and an error is one line.
_LINE_BREAKS = {ord(c): c.encode("unicode_escape").decode("ascii")
                for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


def _one_line(message: str) -> str:
    return message.translate(_LINE_BREAKS)


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _add_train_options(p: argparse.ArgumentParser) -> None:
    _add_data_options(p)
    _add_model_and_run_options(p)


def _add_data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data (set once for a token store, when it is prepared)")
    add_config_options(g, DataConfig)
    g.add_argument("--val-file", help="validation text (default: a split of CORPUS)")
    g.add_argument("--test-file", help="test text (default: a split of CORPUS)")
    g.add_argument("--data-dir", help="folder that already holds named corpora (default: RNNLAB_DATA_DIR, "
                                      "else the download cache)")


def _add_model_and_run_options(p: argparse.ArgumentParser) -> None:
    add_config_options(p.add_argument_group("model"), ModelConfig)
    add_config_options(p.add_argument_group("training"), TrainConfig)
    r = add_run_options(p)
    r.add_argument("--init-from", dest="init_from", help="start from a trained model, or 'default' (default: "
                                                         "random weights)")


_RUN_KEYS = {"command", "corpus", "output", "val_file", "test_file", "data_dir", "resume", "overwrite",
             "init_from", "quiet", "func"}


def cmd_train(args: argparse.Namespace) -> int:
    from rnnlab import api

    options = {k: v for k, v in vars(args).items() if k not in _RUN_KEYS and v is not None}
    api.train(args.corpus, args.output, val_file=args.val_file, test_file=args.test_file,
              data_dir=args.data_dir, resume=args.resume, overwrite=args.overwrite,
              init_from=args.init_from, log=_err, progress=False if args.quiet else None,
              **options)
    return 0



def cmd_prepare(args: argparse.Namespace) -> int:
    from rnnlab.config import DataConfig
    from rnnlab.data import token_store
    from rnnlab.data.tokenizers import load_tokenizer

    given = {f.name: getattr(args, f.name) for f in fields(DataConfig) if getattr(args, f.name) is not None}
    tokenizer = None
    if args.tokenizer is not None:
        tokenizer = load_tokenizer(args.tokenizer)
        if "level" in given and given["level"] != tokenizer.kind:
            from rnnlab.errors import ConfigError

            raise ConfigError(f"--level {given['level']} contradicts --tokenizer, a {tokenizer.kind} tokenizer")
        given["level"] = tokenizer.kind
        given["lower"] = tokenizer.lower
    store = token_store.prepare(args.corpus, args.output, DataConfig(**given), tokenizer=tokenizer,
                                val_file=args.val_file, test_file=args.test_file, data_dir=args.data_dir,
                                overwrite=args.overwrite, log=_err)
    meta = store.meta
    print(json.dumps({"path": str(store.path), "tokens": meta["tokens"], "dtype": meta["dtype"],
                      "vocab_size": meta["vocab_size"],
                      "splits": {name: {"tokens": store.text_tokens(name), "chars": store.chars(name)}
                                 for name in meta["splits"]}}, indent=2))
    return 0


def _add_sample_options(p: argparse.ArgumentParser) -> None:
    add_config_options(p.add_argument_group("sampling"), SampleConfig)


_SAMPLE_KEYS = tuple(f.name for f in fields(SampleConfig))


def _sample_options(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in _SAMPLE_KEYS if getattr(args, k, None) is not None}


def cmd_generate(args: argparse.Namespace) -> int:
    from rnnlab import api

    lm = api.load(args.model)
    options = _sample_options(args)
    if args.interactive:
        from rnnlab.interactive import run_interactive

        return run_interactive(lm, options, words=args.words, stdin=sys.stdin, stdout=sys.stdout)
    if args.json:
        samples = lm.sample(args.prompt, **options)
        print(json.dumps([s.to_dict() for s in samples], ensure_ascii=False, indent=2))
        return 0
    if options.get("num_samples", 1) == 1:
        sys.stdout.write(args.prompt if args.prompt else "")
        sys.stdout.flush()

        def stream(piece: str) -> None:
            sys.stdout.write(piece)
            sys.stdout.flush()

        lm.stream(args.prompt, on_text=stream, **options)
        sys.stdout.write("\n")
        return 0
    samples = lm.sample(args.prompt, **options)
    for i, s in enumerate(samples, 1):
        print(f"=== sample {i} ===")
        print(s.text)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rnnlab import api

    metrics = api.load(args.model).evaluate(args.file, dynamic=args.dynamic, dynamic_lr=args.dynamic_lr)
    if args.json:
        print(json.dumps(metrics, ensure_ascii=False))
        return 0
    print(f"loss        {metrics['loss']:.4f} nats/token")
    print(f"perplexity  {metrics['perplexity']:.3f}")
    print(f"bpc         {metrics['bpc']:.4f} bits/character")
    print(f"accuracy    {metrics['accuracy']:.4f}")
    print(f"tokens      {metrics['tokens']} scored over {metrics['characters']} characters")
    kinds = ", ".join(repr(k) for k in metrics["unknown_kinds"][:10])
    print(f"unknown     {metrics['unknown']} token(s) the model never saw counted as <unk>"
          + (f" ({kinds})" if kinds else ""))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from rnnlab import api
    from rnnlab.report import format_info

    info = api.load(args.model).info()
    print(json.dumps(info, indent=2, ensure_ascii=False) if args.json else format_info(info))
    return 0


def cmd_predict_next(args: argparse.Namespace) -> int:
    from rnnlab import api

    top = api.load(args.model).predict_next(args.text, k=args.k, unknown=args.unknown or "error")
    if args.json:
        print(json.dumps([{"token": t, "probability": p} for t, p in top], ensure_ascii=False))
        return 0
    for token, prob in top:
        print(f"{prob:8.4f}  {token!r}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from rnnlab.report import plot_history

    plot_history(args.model, args.output)
    print(args.output)
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from rnnlab.data.registry import list_datasets

    for d in list_datasets():
        size = f"{d.size:,} bytes" if d.size else "size not published"
        print(f"{d.name:18} {d.licence:24} {size}")
        print(f"{'':18} {d.description}")
        print(f"{'':18} source {d.source}")
        for split, file in d.files.items():
            print(f"{'':18} {split:6} {file.filename}  {file.url}")
            if file.sha256 is not None:
                print(f"{'':18} {'':6} sha256 {file.sha256}")
            elif file.published is not None:
                print(f"{'':18} {'':6} {file.published.algorithm} {file.published.hexdigest} "
                      f"(published by {file.published.publisher})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """`make run`: the default model if shipped, else a short training run on the Jungle Book first."""
    from rnnlab import api

    try:
        lm = api.load(args.model)
    except RnnlabError:
        lm = None
    if lm is None:
        _err("no pretrained default model yet: training a small one on the Jungle Book for "
             f"{args.minutes} minute(s) into {args.output}")
        lm = api.train("jungle-book", args.output, data_dir=args.data_dir, overwrite=True,
                       hidden_size=256, layers=2, embedding_size=64, dropout=0.1, batch_size=32, seq_len=100,
                       max_time=args.minutes, epochs=None, eval_every=200, sample_every=0, log=_err)
    for temperature in (0.5, 0.9):
        samples = lm.sample("Mowgli", length=250, temperature=temperature, num_samples=2, seed=1)
        for i, sample in enumerate(samples, 1):
            print(f"=== prompt 'Mowgli', temperature {temperature}, sample {i} ===")
            print(sample.text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rnnlab", description="Train recurrent networks to generate text and forecast "
                     "series.")
    from rnnlab import __version__

    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train a language model on a text file, folder, named corpus or token store")
    p.add_argument("corpus", help="text file, folder of .txt files, a corpus name (see `rnnlab datasets`) or a "
                                  "token store from `rnnlab prepare`")
    p.add_argument("-o", "--output", required=True, help="model directory to write")
    _add_train_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("prepare", help="tokenize a corpus once into a memory-mapped token store, for `rnnlab "
                       "train TOKENS_DIR` (corpora larger than memory)")
    p.add_argument("corpus", help="text file, folder of .txt files, or a corpus name (see `rnnlab datasets`)")
    p.add_argument("-o", "--output", required=True, help="token store directory to write")
    p.add_argument("--tokenizer", help="encode with this tokenizer.json (e.g. MODEL_DIR/tokenizer.json, to "
                                       "fine-tune that model on the store) instead of building one")
    p.add_argument("--overwrite", action="store_true", help="replace the token store in TOKENS_DIR")
    _add_data_options(p)
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("generate", help="generate text from a model (the default model if none is given)")
    p.add_argument("model", nargs="?", default=None, help="model directory, or 'default'")
    p.add_argument("--prompt", default="", help="text to continue")
    _add_sample_options(p)
    p.add_argument("--json", action="store_true", help="print samples with per-token log-probabilities")
    p.add_argument("--interactive", action="store_true", help="a prompt loop that continues the story")
    p.add_argument("--words", action="store_true", help="interactive: pick each next word from the top-k")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("evaluate", help="loss, perplexity, bits per character and accuracy on a text")
    p.add_argument("model", help="model directory, or 'default'")
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.add_argument("--dynamic", action="store_true",
                   help="dynamic evaluation: score each segment, then adapt to it (Krause et al. 2018)")
    p.add_argument("--dynamic-lr", type=float, default=0.1, dest="dynamic_lr",
                   help="SGD step of dynamic evaluation (default 0.1, chosen on the default model's validation slice)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("info", help="configuration, parameter counts, corpus facts and metrics of a model")
    p.add_argument("model", help="model directory, or 'default'")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("predict-next", help="the k most likely next tokens after a text")
    p.add_argument("model", help="model directory, or 'default'")
    p.add_argument("text")
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--unknown", choices=["error", "replace"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict_next)

    p = sub.add_parser("plot", help="training history: loss and accuracy per epoch, early stop marked")
    p.add_argument("model")
    p.add_argument("-o", "--output", default="history.png")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("datasets", help="list the named corpora")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("demo", help="what `make run` shows: samples from the default model")
    p.add_argument("--model", default=None)
    p.add_argument("--minutes", type=float, default=2.0)
    p.add_argument("--output", default="runs/demo")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=cmd_demo)

    from rnnlab.serve.command import register as register_serve

    register_serve(sub)

    from rnnlab.cli_forecast import register  # stdlib only at import: pandas is checked where it is used

    register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except RnnlabError as exc:
        _err(f"rnnlab: error: {_one_line(exc.message)}")
        return exc.exit_code
    except KeyboardInterrupt:
        _err("rnnlab: interrupted")
        return 130
    except BrokenPipeError:
        # The reader left (`| head`): what is still buffered for stdout would fail again when Python
        # flushes it at exit and print "Exception ignored ... BrokenPipeError"; send it nowhere instead.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
