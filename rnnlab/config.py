"""Settings as data: frozen dataclasses, validated on construction, with a JSON round-trip.

Each field's error names the command-line flag a user would type, so one validation serves the CLI and
the Python API alike. Derived values (the vocabulary size) are filled in by the code that knows them.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from rnnlab.errors import ConfigError

FORMAT_VERSION = 1

CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu", "mingru", "minlstm")
# Cells whose gates read the input only (Feng et al. 2024), trained by a parallel scan in residual blocks.
MIN_CELLS = ("mingru", "minlstm")
PRECISIONS = ("fp32", "bf16")
LEVELS = ("char", "word", "bpe")
OBJECTIVES = ("sequence", "window", "prefixes")
OPTIMIZERS = ("adamw", "adam", "rmsprop", "sgd")
SCHEDULES = ("cosine", "plateau", "constant")
STRATEGIES = ("sample", "greedy", "creativity")

T = TypeVar("T")


def flag_field(name: str) -> dict:
    return {"flag": name}


def require(ok: bool, flag: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{flag} {message}")


def require_one_of(value: Any, choices: tuple, flag: str) -> None:
    require(value in choices, flag, f"must be one of {', '.join(choices)} (got {value!r})")


# torch.manual_seed takes any 64-bit value, but numpy and Python's random want unsigned 63-bit ones too;
# one range for every seed (CLI flags, config files, interactive /seed) keeps them all reproducible.
SEED_LIMIT = 2**63


def check_seed(value: Any, flag: str = "--seed") -> int:
    """`value` as a seed in [0, 2**63), or a ConfigError naming `flag`."""
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < SEED_LIMIT
    require(ok, flag, f"must be a whole number from 0 to 2**63 - 1 (got {value!r})")
    return value


# What each annotation of a config field accepts. A bool is not a number here (True would pass as 1 layer)
# and 16.0 is not a whole number, so a hand-edited config.json fails by name instead of deep in torch.
_KINDS = {
    "int": ("a whole number", lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool)),
    "float": ("a number", lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool)),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "str": ("a string", lambda v: isinstance(v, str)),
    "None": ("null", lambda v: v is None),
}


def _check_field_type(value: Any, annotation: str, flag: str) -> None:
    """Refuse `value` unless it fits `annotation` ("int", "float | None", "tuple[float, float, float]")."""
    options = [part.strip() for part in annotation.split("|")]
    for option in options:
        if option.startswith("tuple["):
            inner = [t.strip() for t in option[len("tuple["):-1].split(",")]
            if isinstance(value, (tuple, list)):
                # Fixed-length tuples of one kind are checked item by item; variadic ones check their
                # items in __post_init__ (a --diff lag may be "season").
                if "..." in inner:
                    return
                name, ok = _KINDS[inner[0]]
                require(all(ok(item) for item in value), flag, f"must hold only {name}s (got {value!r})")
                return
        elif _KINDS[option][1](value):
            return
    wanted = " or ".join("a list" if o.startswith("tuple[") else _KINDS[o][0] for o in options)
    raise ConfigError(f"{flag} must be {wanted} (got {value!r})")


class JsonConfig:
    """to_dict/from_dict with unknown keys rejected, so a typo in a config file is an error, not a default."""

    def check_types(self) -> None:
        """Every field of the kind its annotation names; called first by each __post_init__."""
        for f in fields(self):  # type: ignore[arg-type]
            _check_field_type(getattr(self, f.name), str(f.type), f.metadata.get("flag", f.name))

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        if not isinstance(data, dict):
            raise ConfigError(f"the {cls.__name__} settings must be a JSON object (got {data!r})")
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
class ModelConfig(JsonConfig):
    """The network: embedding (or one-hot) -> stacked recurrent cells -> linear projection to the vocabulary."""

    vocab_size: int = 0  # derived from the tokenizer
    cell: str = field(default="lstm", metadata=flag_field("--cell"))
    layers: int = field(default=2, metadata=flag_field("--layers"))
    hidden_size: int = field(default=512, metadata=flag_field("--hidden"))
    embedding_size: int = field(default=128, metadata=flag_field("--embedding"))
    dropout: float = field(default=0.4, metadata=flag_field("--dropout"))
    weight_drop: float = field(default=0.0, metadata=flag_field("--weight-drop"))
    # AWD-LSTM's regularisers (Merity et al. 2018): whole embedding rows dropped, and --dropout with one
    # mask per sequence (locked/variational) instead of one per element.
    embed_dropout: float = field(default=0.0, metadata=flag_field("--embed-dropout"))
    locked_dropout: bool = field(default=False, metadata=flag_field("--locked-dropout"))
    # Width of the MLP in each residual block of the min cells, as a multiple of --hidden (0: no MLP).
    mlp_ratio: int = field(default=4, metadata=flag_field("--mlp-ratio"))
    tie_weights: bool = field(default=False, metadata=flag_field("--tie-weights"))
    input: str = field(default="embedding", metadata=flag_field("--input"))
    bidirectional: bool = field(default=False, metadata=flag_field("--bidirectional"))
    cell_impl: str = field(default="fused", metadata=flag_field("--cell-impl"))
    # "sequence" models predict every position; "last" models (window/prefix objectives) only the last.
    output: str = "sequence"
    # How many tokens the model reads to predict one (the window objective's --window); None: all, statefully.
    context: int | None = None

    def __post_init__(self) -> None:
        self.check_types()
        require_one_of(self.cell, CELLS, "--cell")
        require(self.context is None or self.context >= 1, "context", f"must be at least 1 (got {self.context})")
        require(self.layers >= 1, "--layers", f"must be at least 1 (got {self.layers})")
        require(self.hidden_size >= 1, "--hidden", f"must be at least 1 (got {self.hidden_size})")
        require(self.embedding_size >= 1, "--embedding", f"must be at least 1 (got {self.embedding_size})")
        require(0.0 <= self.dropout < 1.0, "--dropout", f"must be in [0, 1) (got {self.dropout})")
        require(0.0 <= self.weight_drop < 1.0, "--weight-drop", f"must be in [0, 1) (got {self.weight_drop})")
        require(0.0 <= self.embed_dropout < 1.0, "--embed-dropout",
                f"must be in [0, 1) (got {self.embed_dropout})")
        require(0 <= self.mlp_ratio <= 64, "--mlp-ratio", f"must be in [0, 64] (got {self.mlp_ratio})")
        if self.cell in MIN_CELLS:
            require(self.weight_drop == 0.0, "--weight-drop",
                    f"acts on recurrent weights, which --cell {self.cell} does not have")
            require(not self.bidirectional, "--bidirectional", f"is not available with --cell {self.cell}")
            require(self.cell_impl == "fused", "--cell-impl",
                    f"reference is for lstm, gru and rnn_*; --cell {self.cell} has one implementation")
        require_one_of(self.input, ("embedding", "onehot"), "--input")
        require_one_of(self.cell_impl, ("fused", "reference"), "--cell-impl")
        require_one_of(self.output, ("sequence", "last"), "output")
        require(self.vocab_size >= 0, "vocab_size", "must not be negative")
        if self.tie_weights:
            require(self.input == "embedding", "--tie-weights", "needs an embedding input, not one-hot")
            require(not self.bidirectional, "--tie-weights", "cannot be used with --bidirectional")
        if self.bidirectional:
            require(self.output == "last", "--bidirectional",
                  "works with --objective window or prefixes only: with the sequence objective the "
                  "backward direction would see the very tokens it must predict")


@dataclass(frozen=True)
class DataConfig(JsonConfig):
    """How a corpus becomes tokens: cleaning, split and tokenizer settings."""

    level: str = field(default="char", metadata=flag_field("--level"))
    lower: bool = field(default=False, metadata=flag_field("--lower"))
    max_vocab: int | None = field(default=None, metadata=flag_field("--max-vocab"))
    min_count: int = field(default=1, metadata=flag_field("--min-count"))
    vocab_size: int = field(default=2000, metadata=flag_field("--vocab-size"))  # bpe target size
    keras_compat: bool = field(default=False, metadata=flag_field("--keras-compat"))
    keep_header: bool = field(default=False, metadata=flag_field("--keep-header"))
    # How corpus files are decoded: strict UTF-8 by default, so mojibake never trains a model silently.
    encoding: str = field(default="utf-8", metadata=flag_field("--encoding"))
    errors: str = field(default="strict", metadata=flag_field("--errors"))
    split: tuple[float, float, float] = field(default=(0.9, 0.05, 0.05), metadata=flag_field("--split"))

    def __post_init__(self) -> None:
        self.check_types()
        require_one_of(self.level, LEVELS, "--level")
        require(self.max_vocab is None or self.max_vocab >= 2, "--max-vocab", "must be at least 2")
        require(self.min_count >= 1, "--min-count", f"must be at least 1 (got {self.min_count})")
        require(self.vocab_size >= 2, "--vocab-size", f"must be at least 2 (got {self.vocab_size})")
        require_one_of(self.errors, ("strict", "replace", "ignore"), "--errors")
        require(len(self.split) == 3 and all(x >= 0 for x in self.split) and self.split[0] > 0,
              "--split", "must be three non-negative fractions with a positive training share")
        require(math.isclose(sum(self.split), 1.0, abs_tol=1e-6), "--split", "fractions must add up to 1")
        if self.keras_compat:
            require(self.level == "word", "--keras-compat", "applies to --level word only")


@dataclass(frozen=True)
class TrainConfig(JsonConfig):
    """How the model is trained: objective, batches, optimiser, schedule, budget, evaluation, checkpoints."""

    objective: str = field(default="sequence", metadata=flag_field("--objective"))
    seq_len: int = field(default=64, metadata=flag_field("--seq-len"))
    batch_size: int = field(default=32, metadata=flag_field("--batch-size"))
    window: int = field(default=40, metadata=flag_field("--window"))
    stride: int = field(default=1, metadata=flag_field("--stride"))
    epochs: int | None = field(default=20, metadata=flag_field("--epochs"))
    max_steps: int | None = field(default=None, metadata=flag_field("--max-steps"))
    max_time: float | None = field(default=None, metadata=flag_field("--max-time"))  # minutes
    optimizer: str = field(default="adamw", metadata=flag_field("--optimizer"))
    lr: float = field(default=3e-3, metadata=flag_field("--lr"))
    weight_decay: float = field(default=0.01, metadata=flag_field("--weight-decay"))
    schedule: str = field(default="cosine", metadata=flag_field("--schedule"))
    warmup_steps: int = field(default=20, metadata=flag_field("--warmup"))
    clip: float = field(default=1.0, metadata=flag_field("--clip"))
    ema: float = field(default=0.0, metadata=flag_field("--ema"))  # decay of the weight average; 0 = off
    eval_every: int | None = field(default=None, metadata=flag_field("--eval-every"))
    patience: int | None = field(default=3, metadata=flag_field("--patience"))
    min_delta: float = field(default=0.0, metadata=flag_field("--min-delta"))
    seed: int = field(default=0, metadata=flag_field("--seed"))
    sample_every: int = field(default=1, metadata=flag_field("--sample-every"))  # epochs; 0 = off
    checkpoint_every: int = field(default=200, metadata=flag_field("--checkpoint-every"))
    device: str = field(default="auto", metadata=flag_field("--device"))
    # Activation and temporal activation regularisation (AWD-LSTM): alpha * mean(h^2) on the dropped
    # last-layer outputs, beta * mean((h_t - h_{t-1})^2) on the undropped ones. 0 = off.
    ar: float = field(default=0.0, metadata=flag_field("--ar"))
    tar: float = field(default=0.0, metadata=flag_field("--tar"))
    precision: str = field(default="fp32", metadata=flag_field("--precision"))

    def __post_init__(self) -> None:
        self.check_types()
        require_one_of(self.objective, OBJECTIVES, "--objective")
        require(self.ar >= 0 and math.isfinite(self.ar), "--ar", f"must be >= 0 (got {self.ar}; 0 turns it off)")
        require(self.tar >= 0 and math.isfinite(self.tar), "--tar", f"must be >= 0 (got {self.tar}; 0 turns it off)")
        require_one_of(self.precision, PRECISIONS, "--precision")
        require(self.seq_len >= 1, "--seq-len", f"must be at least 1 (got {self.seq_len})")
        require(self.batch_size >= 1, "--batch-size", f"must be at least 1 (got {self.batch_size})")
        require(self.window >= 1, "--window", f"must be at least 1 (got {self.window})")
        require(self.stride >= 1, "--stride", f"must be at least 1 (got {self.stride})")
        require(self.epochs is None or self.epochs >= 1, "--epochs", "must be at least 1")
        require(self.max_steps is None or self.max_steps >= 1, "--max-steps", "must be at least 1")
        require(self.max_time is None or self.max_time > 0, "--max-time", "must be positive (minutes)")
        require(self.epochs is not None or self.max_steps is not None or self.max_time is not None,
              "--epochs", "or --max-steps or --max-time must bound the run")
        require_one_of(self.optimizer, OPTIMIZERS, "--optimizer")
        require(self.lr > 0 and math.isfinite(self.lr), "--lr", f"must be positive (got {self.lr})")
        require(self.weight_decay >= 0, "--weight-decay", "must not be negative")
        require_one_of(self.schedule, SCHEDULES, "--schedule")
        require(self.warmup_steps >= 0, "--warmup", "must not be negative")
        require(self.clip >= 0, "--clip", f"must not be negative (got {self.clip}; 0 turns clipping off)")
        require(0.0 <= self.ema < 1.0, "--ema", f"must be in [0, 1) (got {self.ema}; 0 turns averaging off)")
        require(self.eval_every is None or self.eval_every >= 1, "--eval-every", "must be at least 1")
        require(self.patience is None or self.patience >= 1, "--patience", "must be at least 1")
        require(self.min_delta >= 0, "--min-delta", "must not be negative")
        require(self.sample_every >= 0, "--sample-every", "must not be negative")
        require(self.checkpoint_every >= 1, "--checkpoint-every", "must be at least 1")
        check_seed(self.seed, "--seed")


@dataclass(frozen=True)
class SampleConfig(JsonConfig):
    """How text is generated. Neutral values (temperature 1, top-k 0, top-p 1) add no transform."""

    length: int = field(default=200, metadata=flag_field("--length"))
    temperature: float = field(default=0.8, metadata=flag_field("--temperature"))
    top_k: int = field(default=0, metadata=flag_field("--top-k"))
    top_p: float = field(default=1.0, metadata=flag_field("--top-p"))
    num_samples: int = field(default=1, metadata=flag_field("--num-samples"))
    seed: int | None = field(default=None, metadata=flag_field("--seed"))
    stop: str | None = field(default=None, metadata=flag_field("--stop"))
    strategy: str = field(default="sample", metadata=flag_field("--strategy"))
    unknown: str = field(default="error", metadata=flag_field("--unknown"))

    def __post_init__(self) -> None:
        self.check_types()
        require(self.length >= 0, "--length", f"must not be negative (got {self.length})")
        require(self.temperature >= 0 and math.isfinite(self.temperature), "--temperature",
              f"must be >= 0 (got {self.temperature}; 0 means greedy)")
        require(self.top_k >= 0, "--top-k", f"must be >= 0 (got {self.top_k}; 0 turns it off)")
        require(0.0 < self.top_p <= 1.0, "--top-p", f"must be in (0, 1] (got {self.top_p})")
        require(self.num_samples >= 1, "--num-samples", f"must be at least 1 (got {self.num_samples})")
        if self.seed is not None:
            check_seed(self.seed, "--seed")
        require(self.stop is None or len(self.stop) > 0, "--stop", "must not be empty")
        require_one_of(self.strategy, STRATEGIES, "--strategy")
        require_one_of(self.unknown, ("error", "replace"), "--unknown")
        if self.strategy == "creativity":
            require(self.top_k >= 1, "--top-k", "must be at least 1 with --strategy creativity")


def flag_of(cls: type, name: str) -> str:
    """The command-line flag that sets field `name` of config class `cls`."""
    for f in fields(cls):
        if f.name == name:
            return f.metadata.get("flag", f"--{name.replace('_', '-')}")
    raise KeyError(name)
