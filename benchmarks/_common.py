"""Shared helpers for the benchmarks: paths, timing, peak memory, the JSON last line, --option NAME=VALUE."""

from __future__ import annotations

import json
import resource
import sys
import time
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def jungle_book_split(text: str) -> tuple[str, str]:
    """The README's benchmark split of the cleaned Jungle Book (../shared/data/README.md): the first
    floor(0.9 n) characters train, the rest is the test part. A benchmark convention, not the library's:
    users split with --split or --val-file/--test-file."""
    n_train = 9 * len(text) // 10
    return text[:n_train], text[n_train:]


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def best_time(fn, repeats: int, warmup: int = 1) -> float:
    """Median seconds of `fn()` over `repeats` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def emit(result: dict) -> None:
    """Every benchmark ends with its figures as one JSON object on the last line of stdout."""
    sys.stdout.flush()
    print(json.dumps(result), flush=True)


def emit_and_record(result: dict, results: Path, record: bool) -> None:
    """`emit`, after appending the result as one line to `results` (a .jsonl in benchmarks/results/) when
    `record`, so tuning runs are kept."""
    if record:
        with results.open("a", encoding="utf-8") as out:
            out.write(json.dumps(result) + "\n")
    emit(result)


def _fields() -> dict:
    from dataclasses import fields

    from rnnlab.config import DataConfig, ModelConfig, TrainConfig

    found = {}
    for cls in (ModelConfig, DataConfig, TrainConfig):
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            found.setdefault(f.name, hints[f.name])
    return found


def parse_option(item: str) -> tuple[str, object]:
    """NAME=VALUE converted to the type of rnnlab's config field NAME ("false"/"0" are False for bools,
    "none" is None for optional fields, "a,b,c" for tuples); an unknown NAME keeps its string."""
    name, value = item.split("=", 1)
    kind = _fields().get(name)
    return name, _convert(value, kind) if kind is not None else value


def _convert(value: str, kind):
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if type(None) in typing.get_args(kind):  # X | None
        return None if value.strip().lower() in ("none", "null", "") else _convert(value, args[0])
    if typing.get_origin(kind) is tuple:
        return tuple(_convert(v, args[0]) for v in value.split(","))
    if kind is bool:
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"not a boolean: {value!r}")
    return kind(value)
