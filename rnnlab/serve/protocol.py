"""OpenAI's completions protocol: a request body checked field by field, errors in OpenAI's shape.

Every field a client can send is checked here, so whatever arrives is either a `CompletionRequest` or an
`ApiError` (400, 404, 413) with `{"error": {"message", "type", "param", "code"}}`; nothing a client sends
reaches the decoder unchecked, and no client input becomes a 500.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rnnlab.errors import ConfigError
from rnnlab.generation.batch import RowSettings

__all__ = ["ApiError", "CompletionRequest", "ForecastRequest", "Limits", "NextRequest", "parse_completion",
           "parse_forecast", "parse_next"]

MAX_STOPS = 4
MAX_LOGPROBS = 5
MAX_N = 16
MAX_NEXT_K = 50
MAX_HORIZON = 10_000
MAX_POINTS = 1_000_000
SEED_LIMIT = 2**63


class ApiError(Exception):
    """An error for the client: HTTP status and OpenAI's error object."""

    TYPES = {400: "invalid_request_error", 404: "invalid_request_error", 413: "invalid_request_error",
             429: "rate_limit_error", 503: "service_unavailable", 504: "timeout"}

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.TYPES.get(self.status, "invalid_request_error"),
                          "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class Limits:
    """What one server accepts (the `rnnlab serve` flags)."""

    max_batch: int = 64
    max_queue: int = 256
    max_tokens_limit: int = 2048
    max_prompt_chars: int = 20_000
    timeout: float = 120.0  # seconds a request may run, queue included
    stream_interval: float = 0.025  # seconds between hand-overs of tokens to the HTTP side (scheduler.Outbox)
    threads: int | None = None  # the decode loop's torch threads (None: torch's default)


@dataclass(frozen=True)
class CompletionRequest:
    model: str
    prompts: tuple[str, ...]
    max_tokens: int
    n: int
    stop: tuple[str, ...]
    echo: bool
    stream: bool
    include_usage: bool
    logprobs: int | None
    settings: RowSettings  # seed of choice 0; choice i gets seed + i


@dataclass(frozen=True)
class NextRequest:
    model: str
    prompt: str
    k: int


@dataclass(frozen=True)
class ForecastRequest:
    model: str
    values: list | None  # [T] or [T, D] numbers; None: forecast after the series the model was fitted on
    timestamps: tuple[str, ...] | None
    horizon: int | None
    levels: tuple[int, ...] | None


def _bad(message: str, param: str) -> ApiError:
    return ApiError(400, message, param, "invalid_value")


def _number(body: dict, name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not low <= value <= high:
        raise _bad(f"{name} must be a number from {low:g} to {high:g} (got {value!r})", name)
    return float(value)


def _integer(body: dict, name: str, default: int | None, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(f"{name} must be a whole number from {low} to {high} (got {value!r})", name)
    return value


def _model(body: dict, models) -> str:
    name = body.get("model")
    if name is None and len(models) == 1:
        return next(iter(models))
    if not isinstance(name, str):
        raise _bad("model must be the name of a served model (see GET /v1/models)", "model")
    if name not in models:
        raise ApiError(404, f"the model {name!r} does not exist; served: {', '.join(sorted(models))}",
                       "model", "model_not_found")
    return name


def _prompt_chars(prompts: tuple[str, ...], limits: Limits) -> None:
    longest = max((len(p) for p in prompts), default=0)
    if longest > limits.max_prompt_chars:
        raise ApiError(413, f"the prompt has {longest} characters, more than this server's --max-prompt-chars "
                       f"{limits.max_prompt_chars}", "prompt", "prompt_too_long")


def parse_completion(body: Any, models, limits: Limits) -> CompletionRequest:
    """The body of POST /v1/completions, checked; an ApiError names the first bad field."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", None, "invalid_json")
    model = _model(body, models)
    prompt = body.get("prompt", "")
    if isinstance(prompt, str):
        prompts = (prompt,)
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        prompts = tuple(prompt)
    else:
        raise _bad("prompt must be a string or a non-empty list of strings (token-id prompts are not "
                   "supported)", "prompt")
    _prompt_chars(prompts, limits)
    max_tokens = _integer(body, "max_tokens", 16, 0, limits.max_tokens_limit)
    n = _integer(body, "n", 1, 1, MAX_N)
    if len(prompts) * n > limits.max_batch:
        raise _bad(f"{len(prompts)} prompt(s) x n={n} needs more rows than this server's --max-batch "
                   f"{limits.max_batch}", "n")
    stop = body.get("stop")
    if stop is None:
        stops: tuple[str, ...] = ()
    elif isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, list) and len(stop) <= MAX_STOPS and all(isinstance(s, str) for s in stop):
        stops = tuple(stop)
    else:
        raise _bad(f"stop must be a string or a list of up to {MAX_STOPS} strings", "stop")
    if any(not s for s in stops):
        raise _bad("stop strings must not be empty", "stop")
    logprobs = _integer(body, "logprobs", None, 0, MAX_LOGPROBS)
    for flag in ("echo", "stream"):
        if body.get(flag) is not None and not isinstance(body.get(flag), bool):
            raise _bad(f"{flag} must be true or false", flag)
    options = body.get("stream_options")
    if options is not None and (not isinstance(options, dict) or
                                not isinstance(options.get("include_usage", False), bool)):
        raise _bad("stream_options must be an object like {\"include_usage\": true}", "stream_options")
    top_k = _integer(body, "top_k", 0, -1, 1_000_000)
    try:
        settings = RowSettings(
            temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
            top_p=_number(body, "top_p", 1.0, 0.0, 1.0) or 1e-9,  # OpenAI accepts 0: the top token
            top_k=max(top_k, 0),  # -1 (vLLM's "off") and 0 both mean no top-k
            frequency_penalty=_number(body, "frequency_penalty", 0.0, -2.0, 2.0),
            presence_penalty=_number(body, "presence_penalty", 0.0, -2.0, 2.0),
            seed=_integer(body, "seed", None, 0, SEED_LIMIT - 1),
            logprobs=logprobs or 0)
    except ConfigError as exc:  # a check the transforms make that the ranges above did not
        raise _bad(exc.message, None) from None
    return CompletionRequest(model=model, prompts=prompts, max_tokens=max_tokens, n=n, stop=stops,
                             echo=bool(body.get("echo", False)), stream=bool(body.get("stream", False)),
                             include_usage=bool((options or {}).get("include_usage", False)),
                             logprobs=logprobs, settings=settings)


def parse_next(body: Any, models, limits: Limits) -> NextRequest:
    """The body of POST /v1/next: {"model", "prompt", "k"}."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", None, "invalid_json")
    model = _model(body, models)
    prompt = body.get("prompt", "")
    if not isinstance(prompt, str):
        raise _bad("prompt must be a string", "prompt")
    _prompt_chars((prompt,), limits)
    return NextRequest(model, prompt, _integer(body, "k", 5, 1, MAX_NEXT_K))


def parse_forecast(body: Any, models, limits: Limits) -> ForecastRequest:
    """The body of POST /v1/forecast: {"model", "values", "timestamps", "horizon", "levels"}."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", None, "invalid_json")
    model = _model(body, models)
    values = body.get("values")
    if values is not None:
        rows = values if isinstance(values, list) else None
        if not rows or not all(_is_number(v) or (isinstance(v, list) and v and all(_is_number(x) for x in v))
                               for v in rows):
            raise _bad("values must be a non-empty list of finite numbers (or of lists of them, one per column)",
                       "values")
        if len(rows) > MAX_POINTS:
            raise ApiError(413, f"{len(rows)} values, more than the {MAX_POINTS} this server reads", "values",
                           "series_too_long")
    timestamps = body.get("timestamps")
    if timestamps is not None:
        if values is None or not isinstance(timestamps, list) or len(timestamps) != len(values) \
                or not all(isinstance(t, str) for t in timestamps):
            raise _bad("timestamps must be a list of date strings, one per value", "timestamps")
        timestamps = tuple(timestamps)
    levels = body.get("levels")
    if levels is not None:
        if not isinstance(levels, list) or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 100
                                                   for v in levels):
            raise _bad("levels must be a list of interval levels in percent (e.g. [80, 95])", "levels")
        levels = tuple(levels)
    return ForecastRequest(model, values, timestamps, _integer(body, "horizon", None, 1, MAX_HORIZON), levels)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
