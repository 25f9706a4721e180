"""Settings as data: frozen dataclasses, validated on construction, with a JSON round-trip.

Each field's error names the command-line flag a user would type, so one validation serves the CLI and
the Python API alike. Derived values (the vocabulary size) are filled in by the code that knows them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from rnnlab.errors import ConfigError

FORMAT_VERSION = 1

CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu")
LEVELS = ("char", "word", "bpe")
OBJECTIVES = ("sequence", "window", "prefixes")
OPTIMIZERS = ("adamw", "adam", "rmsprop", "sgd")
SCHEDULES = ("cosine", "plateau", "constant")
STRATEGIES = ("sample", "greedy", "creativity")

T = TypeVar("T")


def _flag(name: str) -> dict:
    return {"flag": name}


def _need(ok: bool, flag: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{flag} {message}")


def _one_of(value: Any, choices: tuple, flag: str) -> None:
    _need(value in choices, flag, f"must be one of {', '.join(choices)} (got {value!r})")


class _JsonMixin:
    """to_dict/from_dict with unknown keys rejected, so a typo in a config file is an error, not a default."""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} setting(s): {', '.join(unknown)}")
        kwargs = {}
        for name, value in data.items():
            if isinstance(value, list):
                value = tuple(value)
            kwargs[name] = value
        return cls(**kwargs)

    def replace(self: T, **changes: Any) -> T:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclass(frozen=True)
class ModelConfig(_JsonMixin):
    """The network: embedding (or one-hot) -> stacked recurrent cells -> linear projection to the vocabulary."""

    vocab_size: int = 0  # derived from the tokenizer
    cell: str = field(default="lstm", metadata=_flag("--cell"))
    layers: int = field(default=2, metadata=_flag("--layers"))
    hidden_size: int = field(default=512, metadata=_flag("--hidden"))
    embedding_size: int = field(default=128, metadata=_flag("--embedding"))
    dropout: float = field(default=0.25, metadata=_flag("--dropout"))
    tie_weights: bool = field(default=False, metadata=_flag("--tie-weights"))
    input: str = field(default="embedding", metadata=_flag("--input"))
    bidirectional: bool = field(default=False, metadata=_flag("--bidirectional"))
    cell_impl: str = field(default="fused", metadata=_flag("--cell-impl"))
    # "sequence" models predict every position; "last" models (window/prefix objectives) only the last.
    output: str = "sequence"

    def __post_init__(self) -> None:
        _one_of(self.cell, CELLS, "--cell")
        _need(self.layers >= 1, "--layers", f"must be at least 1 (got {self.layers})")
        _need(self.hidden_size >= 1, "--hidden", f"must be at least 1 (got {self.hidden_size})")
        _need(self.embedding_size >= 1, "--embedding", f"must be at least 1 (got {self.embedding_size})")
        _need(0.0 <= self.dropout < 1.0, "--dropout", f"must be in [0, 1) (got {self.dropout})")
        _one_of(self.input, ("embedding", "onehot"), "--input")
        _one_of(self.cell_impl, ("fused", "reference"), "--cell-impl")
        _one_of(self.output, ("sequence", "last"), "output")
        _need(self.vocab_size >= 0, "vocab_size", "must not be negative")
        if self.tie_weights:
            _need(self.input == "embedding", "--tie-weights", "needs an embedding input, not one-hot")
            _need(not self.bidirectional, "--tie-weights", "cannot be used with --bidirectional")
        if self.bidirectional:
            _need(self.output == "last", "--bidirectional",
                  "works with --objective window or prefixes only: with the sequence objective the "
                  "backward direction would see the very tokens it must predict")


@dataclass(frozen=True)
class DataConfig(_JsonMixin):
    """How a corpus becomes tokens: cleaning, split and tokenizer settings."""

    level: str = field(default="char", metadata=_flag("--level"))
    lower: bool = field(default=False, metadata=_flag("--lower"))
    max_vocab: int | None = field(default=None, metadata=_flag("--max-vocab"))
    min_count: int = field(default=1, metadata=_flag("--min-count"))
    vocab_size: int = field(default=2000, metadata=_flag("--vocab-size"))  # bpe target size
    keras_compat: bool = field(default=False, metadata=_flag("--keras-compat"))
    keep_header: bool = field(default=False, metadata=_flag("--keep-header"))
    split: tuple[float, float, float] = field(default=(0.9, 0.05, 0.05), metadata=_flag("--split"))

    def __post_init__(self) -> None:
        _one_of(self.level, LEVELS, "--level")
        _need(self.max_vocab is None or self.max_vocab >= 2, "--max-vocab", "must be at least 2")
        _need(self.min_count >= 1, "--min-count", f"must be at least 1 (got {self.min_count})")
        _need(self.vocab_size >= 2, "--vocab-size", f"must be at least 2 (got {self.vocab_size})")
        _need(len(self.split) == 3 and all(x >= 0 for x in self.split) and self.split[0] > 0,
              "--split", "must be three non-negative fractions with a positive training share")
        _need(math.isclose(sum(self.split), 1.0, abs_tol=1e-6), "--split", "fractions must add up to 1")
        if self.keras_compat:
            _need(self.level == "word", "--keras-compat", "applies to --level word only")


@dataclass(frozen=True)
class TrainConfig(_JsonMixin):
    """How the model is trained: objective, batches, optimiser, schedule, budget, evaluation, checkpoints."""

    objective: str = field(default="sequence", metadata=_flag("--objective"))
    seq_len: int = field(default=128, metadata=_flag("--seq-len"))
    batch_size: int = field(default=32, metadata=_flag("--batch-size"))
    window: int = field(default=40, metadata=_flag("--window"))
    stride: int = field(default=1, metadata=_flag("--stride"))
    epochs: int | None = field(default=20, metadata=_flag("--epochs"))
    max_steps: int | None = field(default=None, metadata=_flag("--max-steps"))
    max_time: float | None = field(default=None, metadata=_flag("--max-time"))  # minutes
    optimizer: str = field(default="adamw", metadata=_flag("--optimizer"))
    lr: float = field(default=2e-3, metadata=_flag("--lr"))
    weight_decay: float = field(default=0.01, metadata=_flag("--weight-decay"))
    schedule: str = field(default="cosine", metadata=_flag("--schedule"))
    warmup_steps: int = field(default=20, metadata=_flag("--warmup"))
    clip: float = field(default=1.0, metadata=_flag("--clip"))
    eval_every: int | None = field(default=None, metadata=_flag("--eval-every"))
    patience: int | None = field(default=3, metadata=_flag("--patience"))
    min_delta: float = field(default=0.0, metadata=_flag("--min-delta"))
    seed: int = field(default=0, metadata=_flag("--seed"))
    sample_every: int = field(default=1, metadata=_flag("--sample-every"))  # epochs; 0 = off
    checkpoint_every: int = field(default=200, metadata=_flag("--checkpoint-every"))
    device: str = field(default="auto", metadata=_flag("--device"))

    def __post_init__(self) -> None:
        _one_of(self.objective, OBJECTIVES, "--objective")
        _need(self.seq_len >= 1, "--seq-len", f"must be at least 1 (got {self.seq_len})")
        _need(self.batch_size >= 1, "--batch-size", f"must be at least 1 (got {self.batch_size})")
        _need(self.window >= 1, "--window", f"must be at least 1 (got {self.window})")
        _need(self.stride >= 1, "--stride", f"must be at least 1 (got {self.stride})")
        _need(self.epochs is None or self.epochs >= 1, "--epochs", "must be at least 1")
        _need(self.max_steps is None or self.max_steps >= 1, "--max-steps", "must be at least 1")
        _need(self.max_time is None or self.max_time > 0, "--max-time", "must be positive (minutes)")
        _need(self.epochs is not None or self.max_steps is not None or self.max_time is not None,
              "--epochs", "or --max-steps or --max-time must bound the run")
        _one_of(self.optimizer, OPTIMIZERS, "--optimizer")
        _need(self.lr > 0 and math.isfinite(self.lr), "--lr", f"must be positive (got {self.lr})")
        _need(self.weight_decay >= 0, "--weight-decay", "must not be negative")
        _one_of(self.schedule, SCHEDULES, "--schedule")
        _need(self.warmup_steps >= 0, "--warmup", "must not be negative")
        _need(self.clip >= 0, "--clip", f"must not be negative (got {self.clip}; 0 turns clipping off)")
        _need(self.eval_every is None or self.eval_every >= 1, "--eval-every", "must be at least 1")
        _need(self.patience is None or self.patience >= 1, "--patience", "must be at least 1")
        _need(self.min_delta >= 0, "--min-delta", "must not be negative")
        _need(self.sample_every >= 0, "--sample-every", "must not be negative")
        _need(self.checkpoint_every >= 1, "--checkpoint-every", "must be at least 1")


@dataclass(frozen=True)
class SampleConfig(_JsonMixin):
    """How text is generated. Neutral values (temperature 1, top-k 0, top-p 1) add no transform."""

    length: int = field(default=200, metadata=_flag("--length"))
    temperature: float = field(default=0.8, metadata=_flag("--temperature"))
    top_k: int = field(default=0, metadata=_flag("--top-k"))
    top_p: float = field(default=1.0, metadata=_flag("--top-p"))
    num_samples: int = field(default=1, metadata=_flag("--num-samples"))
    seed: int | None = field(default=None, metadata=_flag("--seed"))
    stop: str | None = field(default=None, metadata=_flag("--stop"))
    strategy: str = field(default="sample", metadata=_flag("--strategy"))
    unknown: str = field(default="error", metadata=_flag("--unknown"))

    def __post_init__(self) -> None:
        _need(self.length >= 0, "--length", f"must not be negative (got {self.length})")
        _need(self.temperature >= 0 and math.isfinite(self.temperature), "--temperature",
              f"must be >= 0 (got {self.temperature}; 0 means greedy)")
        _need(self.top_k >= 0, "--top-k", f"must be >= 0 (got {self.top_k}; 0 turns it off)")
        _need(0.0 < self.top_p <= 1.0, "--top-p", f"must be in (0, 1] (got {self.top_p})")
        _need(self.num_samples >= 1, "--num-samples", f"must be at least 1 (got {self.num_samples})")
        _need(self.stop is None or len(self.stop) > 0, "--stop", "must not be empty")
        _one_of(self.strategy, STRATEGIES, "--strategy")
        _one_of(self.unknown, ("error", "replace"), "--unknown")
        if self.strategy == "creativity":
            _need(self.top_k >= 1, "--top-k", "must be at least 1 with --strategy creativity")


def flag_of(cls: type, name: str) -> str:
    """The command-line flag that sets field `name` of config class `cls`."""
    for f in fields(cls):
        if f.name == name:
            return f.metadata.get("flag", f"--{name.replace('_', '-')}")
    raise KeyError(name)
