"""The model directory: a folder that describes itself and holds no pickles.

    MODEL_DIR/
      config.json                 model, data and training settings, corpus facts (format_version)
      tokenizer.json              the vocabulary, so the weights can be read back as text
      model.safetensors           the best weights by validation loss (what `load` uses)
      training_state.safetensors  latest weights, optimiser, RNG, carried state, data position (resume)
      metrics.jsonl               one JSON line per evaluation
      summary.json                final and best metrics, steps, time, why training stopped

Every file is written atomically (temp file, fsync, rename), so a kill at any moment leaves the
previous complete checkpoint in place; metrics.jsonl alone is appended to (one fsynced line at a time).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from rnnlab import _io
from rnnlab.config import FORMAT_VERSION, DataConfig, ModelConfig, TrainConfig
from rnnlab.errors import ConfigError, ModelDirError, RnnlabError
from rnnlab.models.rnn_lm import RNNLanguageModel

CONFIG = "config.json"
TOKENIZER = "tokenizer.json"
WEIGHTS = "model.safetensors"
TRAINING_STATE = "training_state.safetensors"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"


def write_config(model_dir: Path, model: ModelConfig, data: DataConfig, train: TrainConfig,
                 extra: dict[str, Any] | None = None) -> None:
    payload = {"format_version": FORMAT_VERSION, "model": model.to_dict(), "data": data.to_dict(),
               "train": train.to_dict(), **(extra or {})}
    _io.write_json(Path(model_dir) / CONFIG, payload)


def read_config(model_dir: Path) -> dict[str, Any]:
    """config.json as (ModelConfig, DataConfig, TrainConfig, the rest); errors name the directory."""
    model_dir = Path(model_dir)
    if not model_dir.exists():
        raise ModelDirError(f"model directory {model_dir} does not exist")
    if not model_dir.is_dir():
        raise ModelDirError(f"{model_dir} is not a model directory")
    if not (model_dir / CONFIG).is_file():
        raise ModelDirError(f"{model_dir} is not a model directory: {CONFIG} is missing")
    raw = _io.read_json(model_dir / CONFIG)
    if not isinstance(raw, dict) or "model" not in raw:
        raise ModelDirError(f"{model_dir / CONFIG} does not describe a model")
    check_format_version(model_dir / CONFIG, raw)
    try:
        raw["model"] = ModelConfig.from_dict(raw["model"])
        raw["data"] = DataConfig.from_dict(raw.get("data", {}))
        raw["train"] = TrainConfig.from_dict(raw.get("train", {}))
    except (ConfigError, TypeError, ValueError) as exc:
        raise ModelDirError(f"{model_dir / CONFIG} is invalid: {exc}") from exc
    return raw


def check_format_version(path: Path, raw: dict[str, Any]) -> int:
    """The one rule for every model directory's config.json (language models and forecasters alike):
    format_version is a whole number (absent: 0, the first files) and not newer than this rnnlab's;
    older formats are read, since a format only ever gains fields."""
    version = raw.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelDirError(f"{path} is invalid: format_version must be a whole number (got {version!r})")
    if version > FORMAT_VERSION:
        raise ModelDirError(f"{path.parent} was written by a newer rnnlab (format {version}; this one reads "
                            f"up to {FORMAT_VERSION})")
    return version


def save_weights(path: Path, model: torch.nn.Module, dtype: torch.dtype | None = None) -> None:
    """The model's weights as safetensors; `dtype` (e.g. float16 for a shipped model) casts the floating ones."""
    state = _unique_state(model)
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    _io.save_tensors(path, state)


def _unique_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """state_dict without the second name of a tied tensor (safetensors refuses shared storage)."""
    seen: set[int] = set()
    out = {}
    for name, tensor in model.state_dict().items():
        if tensor.data_ptr() in seen and tensor.numel() > 0:
            continue
        seen.add(tensor.data_ptr())
        out[name] = tensor
    return out


def stored_shapes(path: Path) -> dict[str, list[int]]:
    """Name -> shape of every tensor in a safetensors file, read from its header alone (nothing loaded)."""
    from safetensors import SafetensorError, safe_open

    if not Path(path).is_file():
        raise ModelDirError(f"{path} is missing")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {name: list(handle.get_slice(name).get_shape()) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelDirError(f"{path} is truncated or corrupt ({exc})") from exc


def check_shapes(path: Path, stored: dict[str, list[int]], expected: dict[str, list[int]],
                 prefix: str = "") -> None:
    """Every tensor `expected` names is in `stored` (under `prefix`) with the same shape, or a one-line
    ModelDirError naming the file and the tensor."""
    for name, shape in expected.items():
        if prefix + name not in stored:
            raise ModelDirError(f"config.json and {Path(path).name} disagree: the file lacks {prefix + name}")
        if stored[prefix + name] != list(shape):
            raise ModelDirError(f"config.json and {Path(path).name} disagree: {prefix + name} is "
                                f"{stored[prefix + name]} in the file but {list(shape)} by the configuration")


def load_weights(path: Path, model: torch.nn.Module, prefix: str = "",
                 tensors: dict[str, torch.Tensor] | None = None) -> None:
    """Load weights after checking every name and shape against the model built from config.json."""
    if tensors is None:
        tensors = _io.load_tensors(path)
    expected = _unique_state(model)
    got = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    missing = sorted(set(expected) - set(got))
    if missing:
        raise ModelDirError(f"{path} lacks weights the configuration needs: {', '.join(missing[:4])}")
    for name, tensor in expected.items():
        if tuple(got[name].shape) != tuple(tensor.shape):
            raise ModelDirError(
                f"config.json and {Path(path).name} disagree: {name} is {list(got[name].shape)} in the "
                f"weights but {list(tensor.shape)} by the configuration")
    model.load_state_dict({**model.state_dict(), **{k: got[k] for k in expected}}, strict=True)


def save_training_state(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                        carry, meta: dict[str, Any], averaged: list[torch.Tensor] | None = None,
                        rng_states: list[torch.Tensor] | None = None) -> None:
    """Everything a resumed run needs to continue bitwise where this one stands. Under DDP `carry` holds
    every rank's lanes and `rng_states` every rank's generator (rank 0's is also "rng.torch")."""
    tensors: dict[str, torch.Tensor] = {f"model.{k}": v for k, v in _unique_state(model).items()}
    optim, groups = optimizer_tensors(optimizer)
    tensors.update(optim)
    tensors.update(rng_tensors())
    for i, state in enumerate(rng_states or ()):
        if i:
            tensors[f"rng.torch.rank{i}"] = state
    if carry is not None:
        for i, s in enumerate(carry if isinstance(carry, tuple) else (carry,)):
            tensors[f"carry.{i}"] = s
    for i, s in enumerate(averaged or ()):
        tensors[f"average.{i}"] = s
    meta = {**meta, "param_groups": groups}
    _io.save_tensors(path, tensors, metadata={"state": json.dumps(meta)})


# -- the one layout of optimiser and generator state, for every training state rnnlab writes -------
#     optim.{i}.{slot}   parameter i's optimiser slots (exp_avg, step, ...), param groups in the JSON
#     rng.torch          torch's CPU generator; rng.cuda.{d} each CUDA device's (where there is CUDA)
def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    """`optimizer`'s slots as named tensors, and its param groups (plain JSON) beside them."""
    state = optimizer.state_dict()
    tensors = {f"optim.{index}.{key}": value for index, slots in state["state"].items()
               for key, value in slots.items() if torch.is_tensor(value)}
    return tensors, state["param_groups"]


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list,
                      device: torch.device | None = None) -> None:
    """Load what `optimizer_tensors` saved (other tensors in `tensors` are ignored)."""
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            moved = value if device is None or name == "step" else value.to(device)
            slots.setdefault(int(index), {})[name] = moved
    optimizer.load_state_dict({"state": slots, "param_groups": groups})


def rng_tensors() -> dict[str, torch.Tensor]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    return tensors


def restore_rng(tensors: dict[str, torch.Tensor], rank: int = 0) -> None:
    """Set the generators `rng_tensors` saved (rank `rank`'s CPU one where a DDP run saved each rank's)."""
    torch.set_rng_state(tensors.get(f"rng.torch.rank{rank}", tensors["rng.torch"]))
    cuda_states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)


def load_training_state(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                        device: torch.device, rank: int = 0) -> tuple[dict[str, Any], Any, list[torch.Tensor]]:
    """Restore model, optimiser and RNG (rank `rank`'s, where a DDP run saved each rank's); returns (meta,
    carried state or None, averaged weights or [])."""
    if not Path(path).is_file():
        raise ModelDirError(f"cannot resume: {path} is missing (the run never wrote a checkpoint)")
    tensors = _io.load_tensors(path)
    try:
        meta = _check_training_state(tensors, _io.load_tensor_metadata(path), model, optimizer)
    except (KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
        detail = f"no {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ModelDirError(f"cannot resume: {path} is not a training state of this run ({detail})") from exc
    load_weights(path, model, prefix="model.", tensors=tensors)
    restore_optimizer(optimizer, tensors, meta.pop("param_groups"), device)
    restore_rng(tensors, rank)
    carry_parts = [tensors[f"carry.{i}"].to(device) for i in range(2) if f"carry.{i}" in tensors]
    carry = None
    if carry_parts:
        carry = tuple(carry_parts) if len(carry_parts) == 2 else carry_parts[0]
    averaged = [tensors[f"average.{i}"] for i in range(len(tensors)) if f"average.{i}" in tensors]
    return meta, carry, averaged


_META_KEYS = ("step", "epoch", "step_in_epoch", "early_stopping", "schedule", "param_groups")


def _check_training_state(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None,
                          model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The run's meta, once the file is known to fit `model` and `optimizer`: every key there, every
    shape right (KeyError / ValueError otherwise), before anything is restored."""
    meta = json.loads((metadata or {})["state"])
    if not isinstance(meta, dict):
        raise ValueError("its metadata is not a JSON object")
    for key in _META_KEYS:
        meta[key]  # noqa: B018 (raises KeyError, named in the message)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            if not index.isdigit() or int(index) >= len(params):
                raise ValueError(f"{key} belongs to no parameter")
            if name != "step" and tuple(value.shape) != tuple(params[int(index)].shape):
                raise ValueError(f"{key} is {list(value.shape)}, its parameter {list(params[int(index)].shape)}")
    rng = tensors["rng.torch"]
    if rng.dtype != torch.uint8 or rng.dim() != 1:
        raise ValueError("rng.torch is not a generator state")
    init_state = getattr(model, "init_state", None)
    carry = [tensors[f"carry.{i}"] for i in range(2) if f"carry.{i}" in tensors]
    if carry and callable(init_state):
        zero = init_state(1)
        expected = [s.shape for s in (zero if isinstance(zero, tuple) else (zero,))]
        if len(carry) != len(expected) or any(c.dim() != 3 or (c.shape[0], c.shape[2]) != (e[0], e[2])
                                              or c.shape != carry[0].shape for c, e in zip(carry, expected)):
            raise ValueError(f"the carried state is {[list(c.shape) for c in carry]}, the model's "
                             f"[{expected[0][0]}, batch, {expected[0][2]}] x {len(expected)}")
    return meta


def append_metrics(model_dir: Path, record: dict[str, Any]) -> None:
    """Append one line and fsync it (the file is never rewritten whole, however long the run).

    A crash mid-write can leave half a line at the end: read_metrics skips it, and the next append
    starts on a fresh line so the records after it stay readable.
    """
    path = Path(model_dir) / METRICS
    line = (json.dumps(record) + "\n").encode("utf-8")
    try:
        with open(path, "a+b") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    line = b"\n" + line
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise RnnlabError(f"could not write {path}: {exc.strerror or exc}") from exc


def read_metrics(model_dir: Path) -> list[dict[str, Any]]:
    path = Path(model_dir) / METRICS
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def truncate_metrics(model_dir: Path, last_step: int) -> None:
    """On resume, drop the lines logged after the checkpoint so they are not logged twice."""
    path = Path(model_dir) / METRICS
    if path.exists():
        kept = [r for r in read_metrics(model_dir) if r.get("step", 0) <= last_step]
        _io.write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def check_weights_fit_config(path: Path, config: ModelConfig) -> None:
    """Compare the weight file's header with the shapes config.json implies before any memory is taken:
    a hand-edited `hidden_size: 1000000` must fail in one line, not allocate terabytes."""
    stored = stored_shapes(path)
    # Each layer holds at least two matrices per direction; checked first, as building a million
    # layers even without memory takes minutes.
    least = 2 * config.layers * (2 if config.bidirectional else 1)
    if least > len(stored):
        raise ModelDirError(f"config.json and {path.name} disagree: {config.layers} layers need at least "
                            f"{least} tensors, the file holds {len(stored)}")
    try:
        with torch.device("meta"):
            network = RNNLanguageModel(config)
    except (RuntimeError, ValueError, OverflowError, TypeError) as exc:
        raise ModelDirError(f"config.json and {path.name} disagree: the configured network cannot be "
                            f"built ({str(exc).splitlines()[0]})") from exc
    # named_parameters lists a tied matrix once, under its first name, as save_weights stores it.
    expected = {name: list(t.shape) for name, t in [*network.named_parameters(), *network.named_buffers()]}
    check_shapes(path, stored, expected)
