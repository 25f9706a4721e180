"""Settings as data: frozen dataclasses, validated on construction, with a JSON round-trip.

A setting is written once, as an `option(...)` field: its flag, its help, its default and the check that
refuses a bad value. The command line builds its argparse groups from these fields (rnnlab.cli_flags),
and every error names the flag a user would type, so one validation serves the CLI, config files and the
Python API alike. Derived values (the vocabulary size) are filled in by the code that knows them.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
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
FORECAST_CELLS = (*CELLS, "rnn")  # "rnn" is rnn_tanh, the SimpleRNN of the tutorials
SCALERS = ("standard", "minmax", "robust", "none")
WINDOW_NORMS = ("none", "last", "mean", "standard")
HEADS = ("quantile", "gaussian")
COMBINES = ("median", "mean")

T = TypeVar("T")

# A check takes a field's value and returns what is wrong with it ("must be at least 1 (got 0)"), or None.
Check = Callable[[Any], "str | None"]


def option(default: Any, flag: str, help: str, check: Check | None = None, *, choices: tuple | None = None,
           shown: str | None = None, metavar: str | None = None, parse: Callable[[str], Any] | None = None,
           negatable: bool = False, const: Any = None) -> Any:
    """A config field that a command-line flag sets, declared once.

    `check` refuses a bad value (`choices` implies one); `shown` is what --help says for the default
    when the default is derived rather than the field's own; `parse` reads the flag's text when the
    field's type alone cannot (a list, a lag spec); `negatable` adds --no-FLAG to a boolean flag; `const`
    is the value of the flag given alone, without a value.
    """
    if choices is not None and check is None:
        check = one_of(choices)
    meta = {"flag": flag, "help": help, "check": check, "choices": choices, "shown": shown, "metavar": metavar,
            "parse": parse, "negatable": negatable, "const": const}
    return field(default=default, metadata=meta)


def require(ok: bool, flag: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{flag} {message}")


# -- checks: each says what is wrong in the words every error of that kind uses ---------------------
def one_of(choices: tuple) -> Check:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)} (got {v!r})"


def at_least(minimum: int, meaning: str | None = None) -> Check:
    """None passes (an optional setting left to its derived default)."""
    return lambda v: None if v is None or v >= minimum else f"must be {meaning or f'at least {minimum}'} (got {v})"


def at_most(minimum: int, maximum: int) -> Check:
    return lambda v: None if minimum <= v <= maximum else f"must be in [{minimum}, {maximum}] (got {v})"


def fraction(note: str = "") -> Check:
    """In [0, 1): a dropout rate, a decay."""
    return lambda v: None if 0.0 <= v < 1.0 else f"must be in [0, 1) (got {v}{note})"


def positive(note: str = "") -> Check:
    return lambda v: None if v is None or (v > 0 and math.isfinite(v)) else f"must be positive (got {v}{note})"


def non_negative(note: str = "") -> Check:
    return lambda v: None if v is None or v >= 0 else f"must not be negative (got {v}{note})"


def finite_non_negative(note: str = "") -> Check:
    return lambda v: None if v >= 0 and math.isfinite(v) else f"must be >= 0 (got {v}{note})"


# torch.manual_seed takes any 64-bit value, but numpy and Python's random want unsigned 63-bit ones too;
# one range for every seed (CLI flags, config files, interactive /seed) keeps them all reproducible.
SEED_LIMIT = 2**63


def check_seed(value: Any, flag: str = "--seed") -> int:
    """`value` as a seed in [0, 2**63), or a ConfigError naming `flag`."""
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < SEED_LIMIT
    require(ok, flag, f"must be a whole number from 0 to 2**63 - 1 (got {value!r})")
    return value


def seed_range(value: Any) -> str | None:
    """check_seed as a field check (it also judges a flag's text that is no number at all)."""
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < SEED_LIMIT
    return None if ok else f"must be a whole number from 0 to 2**63 - 1 (got {value!r})"


# -- readers of flag text that a field's type alone cannot read -------------------------------------
def parse_fractions(text: str) -> tuple[float, ...]:
    """'0.9,0.05,0.05' -> (0.9, 0.05, 0.05) (--split)."""
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"--split must be three fractions like 0.9,0.05,0.05 (got {text!r})") from None


def parse_lags(text: str) -> tuple:
    """'1,season' -> (1, 'season') (--diff); 's' is short for season."""
    lags: list[Any] = []
    for part in text.split(","):
        part = part.strip()
        if part in ("season", "s"):
            lags.append("season")
            continue
        try:
            lags.append(int(part))
        except ValueError:
            raise ConfigError(f"--diff lags must be whole numbers or 'season' (got {part!r})") from None
    return tuple(lags)


def parse_levels(text: str | tuple | list) -> tuple[int, ...]:
    """'80,95' -> (80, 95) (--intervals); every level an integer percentage strictly between 0 and 100."""
    items = text.split(",") if isinstance(text, str) else list(text)
    levels = []
    for item in items:
        try:
            level = int(str(item).strip())
        except ValueError:
            raise ConfigError(f"--intervals must be integer percentages like 80,95 (got {item!r})") from None
        levels.append(level)
    levels = sorted(set(levels))
    require(bool(levels) and all(0 < x < 100 for x in levels), "--intervals",
            f"levels must lie strictly between 0 and 100 (got {text!r})")
    return tuple(levels)


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
        """Every field of the kind its annotation names and passing its option's check (the message
        names the flag); called first by each __post_init__, which adds the checks across fields."""
        for f in fields(self):  # type: ignore[arg-type]
            flag, value = f.metadata.get("flag", f.name), getattr(self, f.name)
            _check_field_type(value, str(f.type), flag)
            check = f.metadata.get("check")
            problem = check(value) if check is not None else None
            if problem:
                raise ConfigError(f"{flag} {problem}")

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


SMALL_CORPUS = "a small corpus: under 0.15 training characters per parameter"


@dataclass(frozen=True)
class ModelConfig(JsonConfig):
    """The network: embedding (or one-hot) -> stacked recurrent cells -> linear projection to the vocabulary."""

    vocab_size: int = field(default=0, metadata={"check": non_negative()})  # derived from the tokenizer
    cell: str = option("lstm", "--cell", "recurrent cell; mingru/minlstm: parallel-scan cells in residual blocks",
                       choices=CELLS)
    layers: int = option(2, "--layers", "stacked recurrent layers", at_least(1))
    hidden_size: int = option(512, "--hidden", "hidden units per layer", at_least(1), metavar="N")
    embedding_size: int = option(128, "--embedding", "embedding width", at_least(1), metavar="N")
    dropout: float = option(0.4, "--dropout", "dropout between layers and on the outputs", fraction(), metavar="P")
    weight_drop: float = option(0.0, "--weight-drop", "DropConnect on the recurrent weights while training",
                                fraction(), metavar="P")
    # AWD-LSTM's regularisers (Merity et al. 2018): whole embedding rows dropped, and --dropout with one
    # mask per sequence (locked/variational) instead of one per element.
    embed_dropout: float = option(0.0, "--embed-dropout", "drop whole rows of the embedding while training "
                                  "(AWD-LSTM)", fraction(), metavar="P", shown=f"0.1 on {SMALL_CORPUS}, else 0")
    locked_dropout: bool = option(False, "--locked-dropout", "--dropout with one mask per sequence on the inputs, "
                                  "between layers and on the outputs", negatable=True,
                                  shown=f"on for {SMALL_CORPUS}, else off")
    # Width of the MLP in each residual block of the min cells, as a multiple of --hidden (0: no MLP).
    mlp_ratio: int = option(4, "--mlp-ratio", "MLP width of each mingru/minlstm block, times --hidden (0: none)",
                            at_most(0, 64), metavar="R")
    tie_weights: bool = option(False, "--tie-weights", "share the embedding and output matrices")
    input: str = option("embedding", "--input", "how tokens enter the network", choices=("embedding", "onehot"))
    bidirectional: bool = option(False, "--bidirectional", "read each window both ways (window and prefixes "
                                 "objectives)")
    cell_impl: str = option("fused", "--cell-impl", "torch's fused kernels or the cells written as equations",
                            choices=("fused", "reference"))
    # "sequence" models predict every position; "last" models (window/prefix objectives) only the last.
    output: str = field(default="sequence", metadata={"check": one_of(("sequence", "last"))})
    # How many tokens the model reads to predict one (the window objective's --window); None: all, statefully.
    context: int | None = field(default=None, metadata={"check": at_least(1)})

    def __post_init__(self) -> None:
        self.check_types()
        if self.cell in MIN_CELLS:
            require(self.weight_drop == 0.0, "--weight-drop",
                    f"acts on recurrent weights, which --cell {self.cell} does not have")
            require(not self.bidirectional, "--bidirectional", f"is not available with --cell {self.cell}")
            require(self.cell_impl == "fused", "--cell-impl",
                    f"reference is for lstm, gru and rnn_*; --cell {self.cell} has one implementation")
        if self.tie_weights:
            require(self.input == "embedding", "--tie-weights", "needs an embedding input, not one-hot")
            require(not self.bidirectional, "--tie-weights", "cannot be used with --bidirectional")
        if self.bidirectional:
            require(self.output == "last", "--bidirectional",
                    "works with --objective window or prefixes only: with the sequence objective the "
                    "backward direction would see the very tokens it must predict")


def _split_ok(split: tuple) -> str | None:
    if not (len(split) == 3 and all(x >= 0 for x in split) and split[0] > 0):
        return "must be three non-negative fractions with a positive training share"
    return None if math.isclose(sum(split), 1.0, abs_tol=1e-6) else "fractions must add up to 1"


@dataclass(frozen=True)
class DataConfig(JsonConfig):
    """How a corpus becomes tokens: cleaning, split and tokenizer settings."""

    level: str = option("char", "--level", "token level", choices=LEVELS)
    lower: bool = option(False, "--lower", "lower-case the text: training text, prompts and evaluation text "
                         "(any level)")
    max_vocab: int | None = option(None, "--max-vocab", "keep the N most frequent words", at_least(2),
                                   metavar="N", shown="all")
    min_count: int = option(1, "--min-count", "words seen fewer times become <unk>", at_least(1), metavar="N")
    vocab_size: int = option(2000, "--vocab-size", "BPE vocabulary size", at_least(2), metavar="N")
    keras_compat: bool = option(False, "--keras-compat", "word tokenizer with Keras Tokenizer semantics")
    keep_header: bool = option(False, "--keep-header", "keep a Project Gutenberg header and footer")
    # How corpus files are decoded: strict UTF-8 by default, so mojibake never trains a model silently.
    encoding: str = option("utf-8", "--encoding", "how the corpus files are decoded, e.g. latin-1")
    errors: str = option("strict", "--errors", "a byte the encoding cannot decode: refuse the file (strict), "
                         "read it as U+FFFD (replace) or drop it (ignore)", choices=("strict", "replace", "ignore"))
    split: tuple[float, float, float] = option((0.9, 0.05, 0.05), "--split", "train,valid,test fractions",
                                               _split_ok, parse=parse_fractions, metavar="T,V,T")

    def __post_init__(self) -> None:
        self.check_types()
        if self.keras_compat:
            require(self.level == "word", "--keras-compat", "applies to --level word only")


@dataclass(frozen=True)
class TrainConfig(JsonConfig):
    """How the model is trained: objective, batches, optimiser, schedule, budget, evaluation, checkpoints."""

    objective: str = option("sequence", "--objective", "what a batch predicts: every next token (sequence), the "
                            "token after a window, or every prefix's next token", choices=OBJECTIVES)
    seq_len: int = option(64, "--seq-len", "steps of truncated backpropagation", at_least(1), metavar="N")
    batch_size: int = option(32, "--batch-size", "sequences per batch", at_least(1), metavar="N")
    window: int = option(40, "--window", "tokens a window model reads (--objective window)", at_least(1),
                         metavar="N")
    stride: int = option(1, "--stride", "tokens between windows", at_least(1), metavar="N")
    epochs: int | None = option(20, "--epochs", "passes over the training text", at_least(1), metavar="N")
    max_steps: int | None = option(None, "--max-steps", "stop after this many optimiser steps", at_least(1),
                                   metavar="N", shown="no limit")
    max_time: float | None = option(None, "--max-time", "minutes of wall clock", positive(" minutes"),
                                    metavar="MIN", shown="no limit")
    optimizer: str = option("adamw", "--optimizer", "optimiser", choices=OPTIMIZERS)
    lr: float = option(3e-3, "--lr", "peak learning rate", positive())
    weight_decay: float = option(0.01, "--weight-decay", "weight decay on matrices", non_negative(), metavar="W")
    schedule: str = option("cosine", "--schedule", "learning-rate schedule after the warm-up", choices=SCHEDULES)
    warmup_steps: int = option(20, "--warmup", "steps of linear warm-up", non_negative(), metavar="N")
    clip: float = option(1.0, "--clip", "gradient norm clip", non_negative("; 0 turns clipping off"))
    ema: float = option(0.0, "--ema", "evaluate and keep an exponential moving average of the weights with this "
                        "decay, e.g. 0.999 (0: off)", fraction("; 0 turns averaging off"), metavar="DECAY")
    eval_every: int | None = option(None, "--eval-every", "evaluate every N steps", at_least(1), metavar="N",
                                    shown="once an epoch")
    patience: int | None = option(3, "--patience", "evaluations without improvement before stopping",
                                  at_least(1), metavar="N")
    min_delta: float = option(0.0, "--min-delta", "the least decrease of the validation loss that counts as one",
                              non_negative(), metavar="D")
    seed: int = option(0, "--seed", "random seed", seed_range)
    sample_every: int = option(1, "--sample-every", "print a sample every N epochs (0: never)", non_negative(),
                               metavar="N")
    checkpoint_every: int = option(200, "--checkpoint-every", "steps between checkpoints", at_least(1),
                                   metavar="STEPS")
    device: str = option("auto", "--device", "cpu, cuda, cuda:N or auto (CUDA when present)")
    # Activation and temporal activation regularisation (AWD-LSTM): alpha * mean(h^2) on the dropped
    # last-layer outputs, beta * mean((h_t - h_{t-1})^2) on the undropped ones. 0 = off.
    ar: float = option(0.0, "--ar", "activation regularisation alpha (AWD-LSTM; 0: off)",
                       finite_non_negative("; 0 turns it off"), shown=f"2 on {SMALL_CORPUS}, else 0")
    tar: float = option(0.0, "--tar", "temporal activation regularisation beta (0: off)",
                        finite_non_negative("; 0 turns it off"), shown=f"1 on {SMALL_CORPUS}, else 0")
    precision: str = option("fp32", "--precision", "fp32 (bitwise reproducible) or bf16 autocast",
                            choices=PRECISIONS)

    def __post_init__(self) -> None:
        self.check_types()
        require(self.epochs is not None or self.max_steps is not None or self.max_time is not None,
                "--epochs", "or --max-steps or --max-time must bound the run")


@dataclass(frozen=True)
class SampleConfig(JsonConfig):
    """How text is generated. Neutral values (temperature 1, top-k 0, top-p 1) add no transform."""

    length: int = option(200, "--length", "new tokens per sample", non_negative(), metavar="N")
    temperature: float = option(0.8, "--temperature", "divides the logits before sampling; 0 is greedy",
                                finite_non_negative("; 0 means greedy"), metavar="T")
    top_k: int = option(0, "--top-k", "sample among the K most likely tokens (0: all)",
                        finite_non_negative("; 0 turns it off"), metavar="K")
    top_p: float = option(1.0, "--top-p", "sample within the smallest set of tokens holding probability P (1: all)",
                          lambda v: None if 0.0 < v <= 1.0 else f"must be in (0, 1] (got {v})", metavar="P")
    num_samples: int = option(1, "--num-samples", "samples to generate", at_least(1), metavar="N")
    seed: int | None = option(None, "--seed", "random seed",
                              lambda v: None if v is None else seed_range(v), shown="a fresh one each run")
    stop: str | None = option(None, "--stop", "stop a sample once it has produced this string",
                              lambda v: None if v is None or len(v) > 0 else "must not be empty", metavar="TEXT")
    strategy: str = option("sample", "--strategy", "creativity: uniform among the --top-k most likely (the "
                           "Keras tutorials')", choices=STRATEGIES)
    unknown: str = option("error", "--unknown", "prompt characters/words outside the vocabulary: an error, or "
                          "mapped to <unk> (replace)", choices=("error", "replace"))

    def __post_init__(self) -> None:
        self.check_types()
        if self.strategy == "creativity":
            require(self.top_k >= 1, "--top-k", "must be at least 1 with --strategy creativity")


def _lags_ok(diff: tuple) -> str | None:
    ok = all((isinstance(d, int) and not isinstance(d, bool) and d >= 1) or d == "season" for d in diff)
    return None if ok else f"lags must be positive integers or 'season' (got {diff})"


def _levels_ok(levels: tuple) -> str | None:
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in levels):
        return f"levels must be integer percentages (got {levels})"
    if not (levels and all(0 < x < 100 for x in levels)):
        return f"levels must lie strictly between 0 and 100 (got {levels})"
    return None if list(levels) == sorted(set(levels)) else "must be increasing and distinct"


@dataclass(frozen=True)
class ForecastConfig(JsonConfig):
    """The recurrent forecaster: transforms, network, head and training.

    Data flow (one window):  level history [L, D] -> log -> scaler (fitted on the training range) ->
    per-window normalisation -> differencing -> recurrent encoder -> direct head (H steps at once) or a
    one-step head rolled out recursively -> re-integrated -> inverse of every transform on output.
    Derived values (the lookback when none is given, the validation size) are filled in at fit time and
    stored resolved, so a saved model never depends on a default that might change.
    """

    horizon: int = option(1, "--horizon", "steps to forecast", at_least(1, "a positive number of steps"),
                          metavar="H", shown="train: none, it is needed; backtest of a MODEL_DIR: the model's")
    lookback: int | None = option(None, "--lookback", "input window", at_least(1), metavar="L",
                                  shown="max(3 seasons, 2 horizons, 8), at most 192, + the differencing lags")
    # Seasons averaged into the season-profile input (windows.py); None: 2 when the season is longer than
    # the window (derived at fit), 0: off.
    season_profile: int | None = option(None, "--season-profile", "average the K seasons before each step into "
                                        "one input (0: off)", non_negative(), metavar="K",
                                        shown="2 when the season is longer than the window")
    cell: str = option("lstm", "--cell", "recurrent cell", choices=FORECAST_CELLS)
    hidden_size: int = option(32, "--hidden", "hidden units", at_least(1), metavar="N")
    layers: int = option(1, "--layers", "stacked recurrent layers", at_least(1), metavar="N")
    patch: int = option(1, "--patch", "the encoder reads the window P steps at a time (SegRNN); 1: step by step",
                        at_least(1), metavar="P")
    dropout: float = option(0.0, "--dropout", "dropout", fraction(), metavar="P")
    highway: bool = option(False, "--highway", "add a linear skip from the input window to the outputs "
                           "(LSTNet's autoregressive part)")
    scaler: str = option("robust", "--scaler", "scaler fitted on the training range", choices=SCALERS)
    log: bool = option(False, "--log", "log-transform the target (inverted on output)")
    diff: tuple[int, ...] = option((), "--diff", "difference at these lags, e.g. 1, season, or 1,season (alone: 1);"
                                   " inverted on output", _lags_ok, parse=parse_lags, metavar="LAGS", shown="none",
                                   const=(1,))
    window_norm: str = option("none", "--window-norm", "normalise each input window by its last value or mean "
                              "(and spread)", choices=WINDOW_NORMS)
    recursive: bool = option(False, "--recursive", "one-step model rolled forward (off: a direct head emitting "
                             "all H steps)")
    head: str = option("quantile", "--head", "probabilistic head", choices=HEADS)
    intervals: tuple[int, ...] = option((80, 95), "--intervals", "prediction interval levels in percent",
                                        _levels_ok, parse=parse_levels, metavar="L[,L]")
    ensemble: int = option(1, "--ensemble", "train N seeds and combine them", at_least(1), metavar="N")
    combine: str = option("median", "--combine", "how ensemble members combine", choices=COMBINES)
    epochs: int | None = option(None, "--epochs", "maximum epochs", at_least(1), metavar="N",
                                shown="300, fewer on long series: about 2,000 steps")
    batch_size: int | None = option(None, "--batch-size", "windows per batch", at_least(1), metavar="N",
                                    shown="32, more on long series: at most 32 steps an epoch")
    lr: float = option(3e-3, "--lr", "peak learning rate of AdamW", positive())
    weight_decay: float = option(1e-2, "--weight-decay", "AdamW weight decay on matrices", non_negative(),
                                 metavar="W")
    clip: float = option(1.0, "--clip", "gradient norm clip, 0 = off", non_negative("; 0 turns clipping off"))
    # None (or 0, read as None) never stops early.
    patience: int | None = option(30, "--patience", "epochs without validation improvement before stopping; "
                                  "0 = never stop early", non_negative(), metavar="N")
    val_size: int | None = option(None, "--val-size", "validate on the last N points of the training range "
                                  "(0 = off)", non_negative(), metavar="N", shown="the horizon")
    seed: int = option(0, "--seed", "random seed; ensemble member i uses seed + i", seed_range)
    samples: int = option(200, "--samples", "simulated paths of the recursive mode", at_least(10), metavar="N")
    checkpoint_every: int = option(10, "--checkpoint-every", "checkpoint period", at_least(1), metavar="EPOCHS")
    device: str = option("auto", "--device", "cpu, cuda, cuda:N or auto (CUDA when present, as train)")
    # Small networks run fastest on one thread.
    threads: int | None = option(1, "--threads", "torch CPU threads while training (1: fastest for small "
                                 "networks)", at_least(1), metavar="N")

    def __post_init__(self) -> None:
        self.check_types()
        if self.patience == 0:  # the flag's "never stop early", stored as EarlyStopping's None
            object.__setattr__(self, "patience", None)

    @property
    def quantiles(self) -> tuple[float, ...]:
        """The quantiles the head learns: the median and both ends of every interval, increasing."""
        qs = {0.5}
        for level in self.intervals:
            qs.add(round((1 - level / 100) / 2, 6))
            qs.add(round(1 - (1 - level / 100) / 2, 6))
        return tuple(sorted(qs))

    def lags(self, season_length: int) -> tuple[int, ...]:
        """The differencing lags with 'season' replaced by the series' season length."""
        return tuple(season_length if d == "season" else int(d) for d in self.diff)

    @property
    def network_cell(self) -> str:
        return "rnn_tanh" if self.cell == "rnn" else self.cell

def flag_of(cls: type, name: str) -> str:
    """The command-line flag that sets field `name` of config class `cls`."""
    for f in fields(cls):
        if f.name == name:
            return f.metadata.get("flag", f"--{name.replace('_', '-')}")
    raise KeyError(name)


def changed_settings(config: Any, given: dict[str, Any], had: str) -> list[str]:
    """"--flag: {had} OLD, given NEW" for each setting in `given` that differs from `config`'s (a resumed
    run's settings, a token store's)."""
    changed = []
    for name, value in given.items():
        old, new = getattr(config, name), tuple(value) if isinstance(value, list) else value
        if new != old:
            changed.append(f"{flag_of(type(config), name)}: {had} {old!r}, given {new!r}")
    return changed


def shown_default(f: dataclasses.Field) -> str:
    """What --help says a field's default is: its `shown` text, else the default as a user would type it."""
    if f.metadata.get("shown"):
        return f.metadata["shown"]
    value = f.default
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) if value else "none"
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value)
