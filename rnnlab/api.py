"""The public Python API: train, load, generate, evaluate, predict the next token.

This is the one module that composes the layers (data -> model -> training; model + tokenizer ->
decoder). The command line is a thin parser over these functions, so everything the CLI does can be
done from Python with the same option names:

    import rnnlab
    lm = rnnlab.train("jungle-book", "runs/jb", hidden_size=256, epochs=5)
    print(lm.generate("Mowgli", length=200, temperature=0.8))
    lm = rnnlab.load("runs/jb"); lm.evaluate("other.txt"); lm.predict_next("Mowgli was", k=5)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from rnnlab import _io
from rnnlab.config import MIN_CELLS, DataConfig, ModelConfig, SampleConfig, TrainConfig, changed_settings
from rnnlab.data import token_store
from rnnlab.data.corpus import read_corpus
from rnnlab.data.splits import reading
from rnnlab.data.tokenizers import Tokenizer, load_tokenizer, save_tokenizer
from rnnlab.errors import ConfigError, DataError, ModelDirError
from rnnlab.generation.decoder import check_memory, decode, prime
from rnnlab.generation.text_stream import TextStream, decode_continuation
from rnnlab.models.rnn_lm import RNNLanguageModel, count_parameters, keras_parameter_count, with_vocabulary
from rnnlab.training import checkpoint as ckpt
from rnnlab.training import distributed, modeldir
from rnnlab.training.loop import Hooks, RunResult, check_precision
from rnnlab.training.loop import train as run_loop
from rnnlab.training.objectives import Objective, objective_of
from rnnlab.training.run_data import STORE_DIR, training_data
from rnnlab.training.seeding import pick_device, seed_everything

DEFAULT_MODEL_DIR = Path(__file__).parent / "pretrained" / "default"
Log = Callable[[str], None]

_MODEL_FIELDS = {f.name for f in fields(ModelConfig)} - {"vocab_size", "output"}
_DATA_FIELDS = {f.name for f in fields(DataConfig)}
_TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}
_SAMPLE_FIELDS = {f.name for f in fields(SampleConfig)}
# What fine-tuning (--init-from) may change in the model: its regularisation, never its shape.
_REGULARISATION_FIELDS = ("dropout", "weight_drop", "embed_dropout", "locked_dropout")
# Defaults that depend on the corpus, chosen on validation bpc in 10-minute runs of the default 2x512 model
# (3.46M parameters; benchmarks/results/defaults-10min.jsonl): AWD-LSTM's regularisers won on the Jungle
# Book's 233k training characters (2.119 vs 2.173: 0.07 characters per parameter), plain dropout won on Tiny
# Shakespeare's 954k (2.179 vs 2.221: 0.28). Overfitting is a matter of text per parameter, so a
# sequence-objective run with fewer training characters than this many per parameter (about 500k for the
# default model) gets them, for each setting its caller left unset.
SMALL_CORPUS_CHARS_PER_PARAMETER = 0.15
SMALL_CORPUS_REGULARISATION = {"locked_dropout": True, "embed_dropout": 0.1, "ar": 2.0, "tar": 1.0}
# A resumed run keeps its settings; only its budget and reporting may change.
_RESUMABLE_TRAIN_FIELDS = {"epochs", "max_steps", "max_time", "eval_every", "sample_every",
                           "checkpoint_every", "patience", "device", "precision"}


def _split_options(options: dict[str, Any]) -> tuple[dict, dict, dict]:
    model, data, train = {}, {}, {}
    for name, value in options.items():
        if name in _MODEL_FIELDS:
            model[name] = value
        elif name in _DATA_FIELDS:
            data[name] = value
        elif name in _TRAIN_FIELDS:
            train[name] = value
        else:
            raise ConfigError(f"unknown training option: {name}")
    return model, data, train


def resolve_model_dir(path: str | os.PathLike | None) -> Path:
    """`None` or "default" name the pretrained model shipped in the package."""
    if path is None or str(path) == "default":
        if not (DEFAULT_MODEL_DIR / ckpt.CONFIG).is_file():
            raise ModelDirError("the pretrained default model is not installed with this copy of rnnlab; "
                                "pass a model directory")
        return DEFAULT_MODEL_DIR
    return Path(path)


# --------------------------------------------------------------------------------------------- training

def train(corpus: str | os.PathLike, out_dir: str | os.PathLike, **kwargs: Any) -> LanguageModel:
    """Train a language model; see `_train` for the arguments.

    The main process holds an exclusive lock on `out_dir` (.rnnlab.lock, with its pid) for the whole run,
    so a second run on the same directory fails at once instead of interleaving its files.
    """
    out_dir = Path(out_dir)
    if not distributed.from_environment().is_main:
        return _train(corpus, out_dir, **kwargs)
    created = not out_dir.exists()
    with modeldir.exclusive_run(out_dir):
        try:
            return _train(corpus, out_dir, **kwargs)
        except BaseException:
            if created and not (out_dir / ckpt.CONFIG).exists():  # no run began: leave no trace
                token_store.remove_store(out_dir / STORE_DIR)
            raise


def _train(corpus: str | os.PathLike, out_dir: str | os.PathLike, *, val_file=None, test_file=None,
           data_dir=None, resume: bool = False, overwrite: bool = False, init_from=None,
           log: Log | None = None, progress: bool | None = None, **options: Any) -> LanguageModel:
    """Train a language model on `corpus` and return it (with its best weights) once training stops.

    `corpus` is a text file, a directory of .txt files or a registered corpus name ("jungle-book").
    `options` are the fields of ModelConfig, DataConfig and TrainConfig (`cell`, `layers`,
    `hidden_size`, `level`, `seq_len`, `epochs`, `max_time`, `seed`, ...). `resume` continues the
    interrupted run in `out_dir` with its saved settings (only budget and reporting options may change);
    `init_from` starts from another model's weights and tokenizer (fine-tuning). `log` receives one line
    per evaluation and the per-epoch samples.
    """
    out_dir = Path(out_dir)
    env = distributed.from_environment()
    log = log if (log is not None and env.is_main) else (lambda _line: None)
    model_opts, data_opts, train_opts = _split_options(options)
    if resume:
        saved = ckpt.read_config(out_dir) if (out_dir / ckpt.CONFIG).is_file() else None
        if saved is None:
            raise ModelDirError(f"cannot resume: {out_dir} holds no run (config.json is missing)")
        fixed_train = {k: v for k, v in train_opts.items() if k not in _RESUMABLE_TRAIN_FIELDS}
        _refuse_changed_settings(saved, model_opts, data_opts, fixed_train)
        model_cfg, data_cfg = saved["model"], saved["data"]
        train_cfg = saved["train"].replace(**train_opts)
        # A run written before the context width was the model's: the window it trains on.
        model_cfg = model_cfg.replace(context=model_cfg.context or objective_of(train_cfg.objective)
                                      .context(train_cfg))
    else:
        data_cfg = DataConfig(**data_opts)
        train_cfg = TrainConfig(**train_opts)
        model_cfg = None
    objective = objective_of(train_cfg.objective)
    output, context = objective.output, objective.context(train_cfg)
    device = pick_device(distributed.device_for(env, train_cfg.device))
    check_precision(device, train_cfg.precision)
    if not resume:  # (a resumed run's directory was checked above: it holds the run's config.json)
        ModelConfig(**model_opts, vocab_size=1, output=output, context=context)  # fail before any work
        modeldir.prepare_run_dir(out_dir, overwrite, env.is_main, data=(STORE_DIR,))

    base = load(init_from, device="cpu") if init_from is not None and not resume else None
    if base is not None and base.data_config is not None:
        # The new corpus is read as this run says; it is tokenized as the base model was.
        data_cfg = base.data_config.replace(split=data_cfg.split, encoding=data_cfg.encoding,
                                            errors=data_cfg.errors, keep_header=data_cfg.keep_header)
    saved_tokenizer = load_tokenizer(out_dir / ckpt.TOKENIZER) if resume else None
    known = saved_tokenizer or (base.tokenizer if base is not None else None)
    data = training_data(corpus, out_dir, objective, data_cfg, data_opts, known, base is not None, env,
                         val_file=val_file, test_file=test_file, data_dir=data_dir)
    if resume:
        _refuse_other_corpus(saved, data.train_sha256)
    tokenizer, data_cfg = data.tokenizer, data.data_cfg
    if base is not None:
        base = _adapt_for_finetuning(base, tokenizer, log)
        model_cfg = base.model.config.replace(output=output, context=context)
        # Regularisation may change for the new text; the architecture may not.
        model_cfg = model_cfg.replace(**{k: v for k, v in model_opts.items() if k in _REGULARISATION_FIELDS})
    if model_cfg is None:
        model_cfg = ModelConfig(**model_opts, vocab_size=tokenizer.vocab_size, output=output, context=context)

    if not resume and init_from is None:
        with torch.device("meta"):  # counted, not allocated: the real model is built once, below
            parameters = count_parameters(RNNLanguageModel(model_cfg))["total"]
        model_cfg, train_cfg = _corpus_defaults(model_cfg, train_cfg, data.train_chars, parameters, options)
    train_data, train_tokens = data.train, data.train_tokens
    valid_data, valid_tokens = data.valid, data.valid_tokens
    if valid_tokens < 2:
        raise DataError("the validation text is empty or shorter than two tokens; give --val-file or a "
                        "larger validation share with --split")
    seed_everything(train_cfg.seed)
    model = RNNLanguageModel(model_cfg)
    if base is not None:
        model.load_state_dict(base.model.state_dict())
    model.to(device)
    # Same initial weights on every rank (DDP broadcasts rank 0's anyway); dropout differs per rank.
    if env.enabled:
        torch.manual_seed(train_cfg.seed + env.rank)
    batches = objective.batches(train_data, train_cfg, env.rank, env.world_size)
    if not resume:  # (a resumed run continues with the settings its first run printed)
        log(_format_settings(model_cfg, train_cfg, tokenizer, train_tokens, count_parameters(model)["total"],
                             device))

    distributed.barrier(env)
    corpus_facts = {"source": data.source, "train_sha256": data.train_sha256, "train_chars": data.train_chars,
                    "valid_chars": data.valid_chars, "test_chars": data.test_chars,
                    "train_tokens": train_tokens, "valid_tokens": valid_tokens}

    def start_run_files() -> None:
        """Called by the loop just before its first write: only then are an overwritten run's files replaced,
        so a run that fails before its first checkpoint leaves the old model as it was."""
        if overwrite:
            modeldir.remove_files(out_dir, (ckpt.METRICS, ckpt.SUMMARY, ckpt.TRAINING_STATE, ckpt.WEIGHTS))
        ckpt.write_config(out_dir, model_cfg, data_cfg, train_cfg, {"corpus": corpus_facts})
        save_tokenizer(tokenizer, out_dir / ckpt.TOKENIZER)

    if env.is_main and resume:
        ckpt.write_config(out_dir, model_cfg, data_cfg, train_cfg, {"corpus": corpus_facts})

    chars_per_token = data.valid_chars / max(valid_tokens, 1)

    def evaluate() -> dict[str, Any]:
        return objective.evaluate(model, valid_data, chars_per_token, device, seq_len=train_cfg.seq_len,
                                  context=model_cfg.context)

    def on_eval(record: dict[str, Any]) -> None:
        log(_format_eval(record))

    def on_epoch_end(epoch: int) -> None:
        if model_cfg.output != "sequence":
            return
        lm = LanguageModel(model, tokenizer, {"model": model_cfg, "data": data_cfg}, out_dir, device)
        text = lm.generate("", length=120, temperature=0.8, seed=train_cfg.seed + epoch)
        log(f"--- sample after epoch {epoch} ---\n{text}\n---")
        model.train()

    hooks = Hooks(on_eval=on_eval, on_epoch_end=on_epoch_end, progress=progress,
                  before_first_write=None if resume else start_run_files)
    ddp_model = distributed.wrap(model, env, device)
    model.train()
    result = run_loop(model, batches, evaluate, train_cfg, out_dir, device, resume=resume, hooks=hooks,
                      is_main=env.is_main, ddp_model=ddp_model)
    if env.is_main:
        _write_summary(out_dir, result, device)
        log(f"stopped after {result.step} steps ({result.stopped}); best validation loss "
            f"{result.best['val_loss']:.4f} ({result.best['val_bpc']:.3f} bpc) kept in {out_dir}"
            if result.best else f"stopped after {result.step} steps ({result.stopped})")
    distributed.barrier(env)
    distributed.shutdown(env)
    return load(out_dir, device=str(device))


def _refuse_changed_settings(saved: dict[str, Any], model_opts: dict, data_opts: dict, train_opts: dict) -> None:
    """A resumed run keeps its settings: repeating one is fine, changing one is refused by flag name."""
    changed = [line for section, given in (("model", model_opts), ("data", data_opts), ("train", train_opts))
               for line in changed_settings(saved[section], given, "saved")]
    if changed:
        raise ConfigError(f"--resume continues the run with its saved settings; cannot change "
                          f"{'; '.join(changed)}")


def _refuse_other_corpus(saved: dict[str, Any], train_sha256: str) -> None:
    """A resume must train on the text its run started on (the sha256 of its UTF-8 bytes)."""
    corpus = saved.get("corpus") or {}
    expected = corpus.get("train_sha256")
    if expected is None:
        return  # a model directory from before fingerprints were stored: nothing to compare
    if train_sha256 != expected:
        raise DataError(f"cannot resume: the training text differs from the one this run started on "
                        f"({corpus.get('source', 'unknown source')}, {corpus.get('train_chars')} characters); "
                        f"give the same corpus and --split, or start a new run")


def _corpus_defaults(model_cfg: ModelConfig, train_cfg: TrainConfig, train_chars: int, parameters: int,
                     given: dict[str, Any]) -> tuple[ModelConfig, TrainConfig]:
    """The small-corpus regularisation (SMALL_CORPUS_REGULARISATION) for the settings not in `given`."""
    if train_chars >= SMALL_CORPUS_CHARS_PER_PARAMETER * parameters or train_cfg.objective != "sequence":
        return model_cfg, train_cfg
    unset = {k: v for k, v in SMALL_CORPUS_REGULARISATION.items() if k not in given}
    model_fields = {f.name for f in fields(ModelConfig)}
    return (model_cfg.replace(**{k: v for k, v in unset.items() if k in model_fields}),
            train_cfg.replace(**{k: v for k, v in unset.items() if k not in model_fields}))


def _format_settings(m: ModelConfig, t: TrainConfig, tokenizer: Tokenizer, tokens: int, parameters: int,
                     device: torch.device) -> str:
    """The run's settings, defaults included, as the first line a run prints."""
    regularisers = [f"dropout {m.dropout}" + (" (locked)" if m.locked_dropout else "")]
    regularisers += [f"{name} {value}" for name, value in (("embed-dropout", m.embed_dropout),
                     ("weight-drop", m.weight_drop), ("ar", t.ar), ("tar", t.tar)) if value]
    cell = f"{m.cell} {m.layers}x{m.hidden_size}" + (f" (mlp {m.mlp_ratio}x)" if m.cell in MIN_CELLS else "")
    budget = ", ".join(f"{name} {value}" for name, value in (("epochs", t.epochs), ("max-steps", t.max_steps),
                                                             ("max-time", t.max_time)) if value is not None)
    return (f"training {cell}, embedding {m.embedding_size}, {', '.join(regularisers)}; {parameters:,} "
            f"parameters; {tokenizer.kind} level, vocabulary {tokenizer.vocab_size}, {tokens:,} training tokens; "
            f"objective {t.objective}, batch {t.batch_size} x seq-len {t.seq_len}, {t.optimizer} lr {t.lr} "
            f"{t.schedule}, {t.precision}; {budget or 'no budget'}; {device.type}, {torch.get_num_threads()} "
            f"thread(s)")


def _format_eval(r: dict[str, Any]) -> str:
    train_loss = f"train loss {r['train_loss']:.4f} | " if r.get("train_loss") is not None else ""
    return (f"step {r['step']:>6} | epoch {r['epoch']:.2f} | {train_loss}val loss {r['val_loss']:.4f} | "
            f"ppl {r['val_perplexity']:.2f} | bpc {r['val_bpc']:.3f} | acc {r['val_accuracy']:.3f}"
            f"{' | best' if r['best'] else ''}")


def _write_summary(out_dir: Path, result: RunResult, device: torch.device) -> None:
    _io.write_json(out_dir / ckpt.SUMMARY, {
        "steps": result.step, "epochs_completed": result.epoch, "stopped": result.stopped,
        "seconds": round(result.seconds, 2), "device": str(device), "threads": torch.get_num_threads(),
        "best": result.best, "last": result.last})


def _adapt_for_finetuning(base: LanguageModel, tokenizer: Tokenizer, log: Log) -> LanguageModel:
    """`base` for `tokenizer`: the same model, or, when the new corpus extended its char vocabulary
    (token_store.prepare's `extend`), one with a row per new character (models.rnn_lm.with_vocabulary)."""
    if tokenizer == base.tokenizer:
        return base
    log(f"extending the vocabulary with {tokenizer.vocab_size - base.tokenizer.vocab_size} new character(s)")
    model = with_vocabulary(base.model, tokenizer.vocab_size)
    return LanguageModel(model, tokenizer, {**base.configs, "model": model.config}, None, base.device)


# -------------------------------------------------------------------------------------------- the model

@dataclass
class Generation:
    """One generated sample: the full text (prompt + continuation), the new part, per-token details."""

    text: str
    continuation: str
    tokens: list[str] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    stopped: str = "length"

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "continuation": self.continuation, "stopped": self.stopped,
                "tokens": [{"token": t, "logprob": lp} for t, lp in zip(self.tokens, self.logprobs)],
                "total_logprob": sum(self.logprobs)}


class LanguageModel:
    """A trained model with its tokenizer: generate, evaluate, predict the next token."""

    def __init__(self, model: RNNLanguageModel, tokenizer: Tokenizer, configs: dict[str, Any],
                 path: Path | None, device: torch.device | str = "cpu"):
        self.model = model
        self.tokenizer = tokenizer
        self.configs = configs
        self.path = path
        self.device = torch.device(device)

    @property
    def banned_ids(self) -> list[int]:
        """Tokens never generated: <unk> and padding would only print placeholders."""
        return [i for i in (self.tokenizer.unk_id, self.tokenizer.pad_id)
                if i is not None and i < self.tokenizer.vocab_size]

    @property
    def objective(self) -> Objective:
        """What the model was trained to predict (training/objectives.py)."""
        train = self.configs.get("train")
        if train is not None:
            return objective_of(train.objective)
        return objective_of("sequence" if self.model.config.output == "sequence" else "window")

    @property
    def data_config(self) -> DataConfig | None:
        return self.configs.get("data")

    def __repr__(self) -> str:
        c = self.model.config
        return (f"LanguageModel({c.cell} {c.layers}x{c.hidden_size}, {self.tokenizer.kind} level, "
                f"vocab {c.vocab_size}, path={self.path})")

    # -- generation
    def _prompt_ids(self, prompt: str, unknown: str) -> tuple[list[int], str]:
        """(ids to prime the model with, the prompt as given: echoed as typed, read as the tokenizer sees it).

        A stateful model starts where it learnt a text starts: the start-of-text context, then the
        prompt (so "Mowgli" is read as a word at the start of a line, not as the tail of one). Window
        and prefix models read only their own context.
        """
        start = self.tokenizer.start_ids() if self.model.config.output == "sequence" else []
        ids = self.tokenizer.encode(prompt, unknown=unknown) if prompt else []
        if not ids:
            # No prompt: the start context alone, or a newline for models without one.
            return (start or self._newline_ids() or [0]), ""
        return start + ids, prompt

    def prompt_ids(self, prompt: str, unknown: str = "error") -> tuple[list[int], str]:
        """(ids a sample of `prompt` is primed with, the prompt as it is echoed): what `sample` reads."""
        return self._prompt_ids(prompt, unknown)

    def _newline_ids(self) -> list[int]:
        return [] if self.tokenizer.unknown_items("\n") else self.tokenizer.encode("\n")

    def sample(self, prompt: str = "", *, on_text: Callable[[str], None] | None = None,
               **options: Any) -> list[Generation]:
        """Generate `num_samples` continuations of `prompt` as one batch, with per-token log-probs.

        Options are the fields of SampleConfig (length, temperature, top_k, top_p, num_samples, seed,
        stop, strategy, unknown). `on_text` receives the new text of the first sample as it is produced.
        """
        unknown_fields = set(options) - _SAMPLE_FIELDS
        if unknown_fields:
            raise ConfigError(f"unknown generation option(s): {', '.join(sorted(unknown_fields))}")
        config = SampleConfig(**options)
        check_memory(config, self.tokenizer.vocab_size, keep=True)
        return self._sample(prompt, config, on_text, keep=True)

    def stream(self, prompt: str = "", on_text: Callable[[str], None] | None = None, **options: Any) -> str:
        """Generate one sample, handing its text to `on_text` piece by piece; returns why it ended ("stop"
        or "length"). Nothing is kept: a char model streams a text of any length in constant memory."""
        unknown_fields = set(options) - _SAMPLE_FIELDS
        if unknown_fields:
            raise ConfigError(f"unknown generation option(s): {', '.join(sorted(unknown_fields))}")
        config = SampleConfig(**options)
        if config.num_samples != 1:
            raise ConfigError("stream() makes one sample; use sample() for --num-samples > 1")
        check_memory(config, self.tokenizer.vocab_size, keep=False)
        (sample,) = self._sample(prompt, config, on_text or (lambda _piece: None), keep=False)
        return sample.stopped

    def _sample(self, prompt: str, config: SampleConfig, on_text, keep: bool) -> list[Generation]:
        prompt_ids, prompt_text = self._prompt_ids(prompt, config.unknown)
        context = prompt_ids if prompt_text else []
        # Rows are followed token by token only when a stop string needs watching; otherwise their text
        # is made once at the end (and only row 0 streams), which keeps batched sampling cheap.
        watch = config.stop is not None
        streams = [TextStream(self.tokenizer, context, config.stop, keep=keep)
                   for _ in range(config.num_samples if watch else 1)]

        def is_stopped(row: int, token: int) -> bool:
            stream = streams[row]
            piece = stream.push(token)
            if row == 0 and on_text is not None and piece:
                on_text(piece)
            return stream.stopped

        def stream_first_row(choice: torch.Tensor) -> None:
            piece = streams[0].push(int(choice[0]))
            if piece:
                on_text(piece)

        samples, _ = decode(self.model, prompt_ids, config, self.device,
                            is_stopped=is_stopped if watch else None,
                            on_tokens=stream_first_row if (on_text is not None and not watch) else None,
                            banned=self.banned_ids, keep=keep)
        out = []
        for row, sample in enumerate(samples):
            if watch or (row == 0 and on_text is not None):
                rest = streams[row].finish()  # a held-back partial character, at the end of the row
                if row == 0 and on_text is not None and rest:
                    on_text(rest)
                continuation = streams[row].text  # "" when not kept: handed to on_text as it came
            else:
                continuation, _ = decode_continuation(self.tokenizer, context, sample.ids)
            out.append(Generation(text=prompt_text + continuation, continuation=continuation,
                                  tokens=[self.tokenizer.token_text(i) for i in sample.ids],
                                  logprobs=sample.logprobs, stopped=sample.stopped))
        return out

    def generate(self, prompt: str = "", **options: Any) -> str | list[str]:
        """The generated text (prompt included): a string, or a list when num_samples > 1."""
        samples = self.sample(prompt, **options)
        texts = [s.text for s in samples]
        return texts[0] if len(texts) == 1 else texts

    # -- scoring
    def evaluate(self, source: str | os.PathLike, *, is_text: bool = False, batch_size: int = 16,
                 seq_len: int = 256, dynamic: bool = False, dynamic_lr: float = 0.1) -> dict[str, Any]:
        """Loss (nats/token), perplexity, bits per character and accuracy on a text file (or text).

        Characters or words the model never saw count as <unk>; how many is reported as `unknown`.
        `dynamic` scores the text with dynamic evaluation (each segment scored, then learned from).
        """
        if is_text:
            text = str(source)
        else:
            text = read_corpus(source, **reading(self.data_config or DataConfig()))
        text = self.tokenizer.normalize(text)
        unknown_items = self.tokenizer.unknown_items(text)
        objective = self.objective
        data, n_tokens = objective.encode(self.tokenizer, text)
        if n_tokens < 2:
            raise DataError("the text is too short to evaluate: it needs at least two tokens")
        unk = _count_id(data, self.tokenizer.unk_id)
        chars_per_token = len(text) / n_tokens
        if dynamic:
            if self.model.config.output != "sequence":
                raise ConfigError("--dynamic works with sequence-objective models only")
            if dynamic_lr <= 0:
                raise ConfigError(f"--dynamic-lr must be positive (got {dynamic_lr})")
            from rnnlab.training.dynamic_eval import evaluate_dynamic

            metrics = evaluate_dynamic(self.model, data, chars_per_token, self.device, lr=dynamic_lr)
        else:
            metrics = objective.evaluate(self.model, data, chars_per_token, self.device, batch_size=batch_size,
                                         seq_len=seq_len, context=self.model.config.context)
        metrics.update({"characters": len(text), "unknown": unk, "unknown_kinds": unknown_items[:20]})
        return metrics

    def predict_next(self, text: str, k: int = 5, unknown: str = "error") -> list[tuple[str, float]]:
        """The k most likely next tokens after `text`, with their probabilities."""
        if k < 1:
            raise ConfigError(f"-k must be at least 1 (got {k})")
        ids, _ = self._prompt_ids(text, unknown)
        self.model.eval()
        with torch.inference_mode():
            if self.model.config.output == "sequence":
                logits, _ = prime(self.model, ids, 1, self.device)
            else:
                if self.model.config.context is not None:
                    ids = ids[-self.model.config.context:]
                logits, _ = self.model(torch.tensor([ids], device=self.device), None,
                                       torch.tensor([len(ids)]))
            probs = torch.softmax(logits.float()[0], dim=-1)
        skip = {self.tokenizer.pad_id} - {None}
        # Padding is never a next token: rank one extra so dropping it still leaves k candidates.
        top = torch.topk(probs, min(k + len(skip), probs.numel()))
        return [(self.tokenizer.token_text(i), float(p)) for p, i in zip(top.values.tolist(),
                top.indices.tolist()) if i not in skip][:k]

    # -- facts
    def info(self) -> dict[str, Any]:
        config_path = self.path / ckpt.CONFIG if self.path else None
        raw = _io.read_json(config_path) if config_path and config_path.exists() else {}
        summary_path = self.path / ckpt.SUMMARY if self.path else None
        summary = _io.read_json(summary_path) if summary_path and summary_path.exists() else {}
        if not isinstance(summary, dict):
            raise ModelDirError(f"{summary_path} is not a JSON object")
        return {"path": str(self.path), "model": self.model.config.to_dict(),
                "data": raw.get("data"), "train": raw.get("train"), "corpus": raw.get("corpus"),
                "tokenizer": {"kind": self.tokenizer.kind, "vocab_size": self.tokenizer.vocab_size},
                "parameters": count_parameters(self.model),
                "keras_parameters": keras_parameter_count(self.model.config),
                "training": summary}


# What a kept generated token costs: int64 id and float32 log-prob tensors, then Python ints, floats and
# token strings in the returned lists (measured ~90 bytes; rounded up).
def _count_id(data, token: int | None) -> int:
    """How often `token` occurs in an objective's data (a tensor of ids, or lines of ids)."""
    if token is None:
        return 0
    if isinstance(data, torch.Tensor):
        return int((data == token).sum())
    return sum(line.count(token) for line in data)


def load(path: str | os.PathLike | None = None, device: str = "cpu") -> LanguageModel:
    """Load a model directory (None or "default": the pretrained model shipped with rnnlab)."""
    model_dir = resolve_model_dir(path)
    configs = ckpt.read_config(model_dir)
    tokenizer = load_tokenizer(model_dir / ckpt.TOKENIZER)
    data_cfg = configs.get("data")
    if data_cfg is not None and data_cfg.lower:
        # Char and BPE tokenizers written before lower-casing was theirs: --lower applied to the prompts.
        tokenizer.lower = True
    model_cfg: ModelConfig = configs["model"]
    train_cfg = configs.get("train")
    if model_cfg.context is None and train_cfg is not None and train_cfg.objective == "window":
        # Written before the context width was the model's: the window it was trained on.
        model_cfg = model_cfg.replace(context=train_cfg.window)
        configs = {**configs, "model": model_cfg}
    if model_cfg.vocab_size != tokenizer.vocab_size:
        raise ModelDirError(f"{model_dir}: config.json says {model_cfg.vocab_size} tokens but tokenizer.json "
                            f"holds {tokenizer.vocab_size}")
    ckpt.check_weights_fit_config(model_dir / ckpt.WEIGHTS, model_cfg)
    model = RNNLanguageModel(model_cfg)
    ckpt.load_weights(model_dir / ckpt.WEIGHTS, model)
    dev = pick_device(device)
    model.to(dev).eval()
    return LanguageModel(model, tokenizer, configs, model_dir, dev)


__all__ = ["Generation", "LanguageModel", "keras_parameter_count", "load", "train"]
