"""The server's counters, written in Prometheus' text format (version 0.0.4) for GET /metrics."""

from __future__ import annotations

import threading
from collections import defaultdict

__all__ = ["Metrics"]

_HELP = {
    "rnnlab_requests_total": ("counter", "HTTP requests answered, by endpoint and status code"),
    "rnnlab_prompt_tokens_total": ("counter", "prompt tokens read"),
    "rnnlab_generated_tokens_total": ("counter", "tokens generated"),
    "rnnlab_decode_steps_total": ("counter", "batched decode steps run"),
    "rnnlab_cancelled_total": ("counter", "requests whose client went away before they finished"),
    "rnnlab_timeouts_total": ("counter", "requests cut at the per-request timeout"),
    "rnnlab_batch_rows": ("gauge", "rows in the running batch"),
    "rnnlab_queue_length": ("gauge", "requests waiting for a place in the batch"),
    "rnnlab_time_to_first_token_seconds": ("summary", "from a request's arrival to its first token"),
    "rnnlab_request_duration_seconds": ("summary", "from a request's arrival to its last token"),
}


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                     for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class Metrics:
    """Thread-safe counters and summaries; gauges are read from callbacks when scraped."""

    def __init__(self):
        self._lock = threading.Lock()
        self._values: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.gauges: list = []  # callables returning [(name, labels, value)]

    def add(self, name: str, value: float = 1.0, **labels: str) -> None:
        with self._lock:
            self._values[name][_labels(labels)] += value

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        with self._lock:
            key = _labels(labels)
            self._values[name + "_sum"][key] += seconds
            self._values[name + "_count"][key] += 1

    def get(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values.get(name, {}).get(_labels(labels), 0.0)

    def render(self) -> str:
        with self._lock:
            values = {name: dict(series) for name, series in self._values.items()}
        for gauge in self.gauges:
            for name, labels, value in gauge():
                values.setdefault(name, {})[_labels(labels)] = value
        lines = []
        for name, (kind, help_text) in _HELP.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
            names = [name + "_sum", name + "_count"] if kind == "summary" else [name]
            for series in names:
                for key, value in sorted(values.get(series, {}).items()):
                    lines.append(f"{series}{key} {_number(value)}")
        return "\n".join(lines) + "\n"
