"""The HTTP layer: OpenAI's completions endpoints, health, metrics and the playground page.

FastAPI is the `serve` extra: this module imports it, so only `rnnlab serve` (command.py, which names the
extra when it is missing) and tests import this module. `create_app(models)` takes loaded models ({name: LanguageModel}); `create_app(loader=...)` loads them in a
thread at startup, and until they are in every endpoint but GET / and /metrics answers 503. The work is
done by one `ModelWorker` per model (scheduler.py); handlers only check the request (protocol.py), submit
it, and turn the worker's events into a JSON response or server-sent events.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fastapi
from fastapi import Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from rnnlab.api import LanguageModel
from rnnlab.config import SampleConfig
from rnnlab.errors import ConfigError, RnnlabError
from rnnlab.serve.metrics import Metrics
from rnnlab.serve.protocol import (
    ApiError,
    CompletionRequest,
    Limits,
    parse_completion,
    parse_forecast,
    parse_next,
)
from rnnlab.serve.scheduler import Job, ModelWorker, make_choices

__all__ = ["create_app"]

STATIC = Path(__file__).parent / "static"


def is_text_model(model: Any) -> bool:
    """A language model (served by /v1/completions); anything else served is a forecaster (/v1/forecast)."""
    return isinstance(model, LanguageModel)


class _Served:
    """The models being served, their workers, and whether loading has finished."""

    def __init__(self, limits: Limits, metrics: Metrics):
        self.limits, self.metrics = limits, metrics
        self.models: dict[str, Any] = {}
        self.workers: dict[str, ModelWorker] = {}
        self.ready = False
        self.failed: str | None = None

    def install(self, models: dict[str, Any]) -> None:
        texts = {name: m for name, m in models.items() if is_text_model(m)}
        for name, lm in texts.items():
            if lm.model.config.output != "sequence":
                raise ConfigError(f"model {name!r} predicts from a fixed window; rnnlab serve decodes "
                                  "sequence-objective models (its state carries the whole text)")
        workers = {name: ModelWorker(name, lm, self.limits, self.metrics) for name, lm in texts.items()}
        for worker in workers.values():
            worker.start()
        self.models, self.workers, self.ready = dict(models), workers, True

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop()


def create_app(models: dict[str, Any] | None = None, *, loader: Callable[[], dict[str, Any]] | None = None,
               limits: Limits | None = None):
    """The FastAPI app serving `models` (or what `loader()` returns, loaded in a thread at startup)."""
    limits = limits or Limits()
    metrics = Metrics()
    served = _Served(limits, metrics)

    @asynccontextmanager
    async def lifespan(_app):
        if models is not None:
            served.install(models)
        elif loader is not None:
            def load() -> None:
                try:
                    served.install(loader())
                except RnnlabError as exc:
                    served.failed = exc.message
            threading.Thread(target=load, name="rnnlab-serve-loader", daemon=True).start()
        yield
        served.stop()

    app = fastapi.FastAPI(title="rnnlab", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def error(exc: ApiError, endpoint: str) -> JSONResponse:
        metrics.add("rnnlab_requests_total", endpoint=endpoint, code=str(exc.status))
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(_request, exc: HTTPException):  # unknown routes, wrong methods: OpenAI's shape too
        return JSONResponse(ApiError(exc.status_code, str(exc.detail)).body(), status_code=exc.status_code)

    def require_ready() -> None:
        if not served.ready:
            detail = f"loading failed: {served.failed}" if served.failed else "the models are still loading"
            raise ApiError(503, detail, None, "loading")

    async def body_of(request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "the request body is not valid JSON", None, "invalid_json") from None

    @app.get("/", include_in_schema=False)
    async def playground():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/health")
    async def health():
        try:
            require_ready()
        except ApiError as exc:
            return JSONResponse(exc.body(), status_code=503)
        return {"status": "ok", "models": sorted(served.models)}

    @app.get("/metrics")
    async def prometheus():
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/models")
    async def list_models():
        try:
            require_ready()
        except ApiError as exc:
            return error(exc, "models")
        return {"object": "list", "data": [_model_card(name, lm) for name, lm in served.models.items()]}

    @app.post("/v1/next")
    async def next_tokens(request: Request):
        try:
            require_ready()
            ask = parse_next(await body_of(request), served.models, limits)
            _text_only(served.models, ask.model)
            candidates = await asyncio.to_thread(_next_words, served.models[ask.model], ask.prompt, ask.k)
        except ApiError as exc:
            return error(exc, "next")
        except RnnlabError as exc:
            return error(ApiError(400, exc.message, "prompt"), "next")
        metrics.add("rnnlab_requests_total", endpoint="next", code="200")
        return {"object": "next_tokens", "model": ask.model,
                "candidates": [{"text": c.text, "probability": c.probability} for c in candidates]}

    @app.post("/v1/forecast")
    async def forecast(request: Request):
        try:
            require_ready()
            ask = parse_forecast(await body_of(request), served.models, limits)
            forecaster = served.models[ask.model]
            if is_text_model(forecaster):
                raise ApiError(400, f"{ask.model!r} is a language model: use /v1/completions", "model",
                               "wrong_model_kind")
            result = await asyncio.to_thread(_forecast, forecaster, ask)
        except ApiError as exc:
            return error(exc, "forecast")
        except RnnlabError as exc:
            return error(ApiError(400, exc.message, "values"), "forecast")
        except (ValueError, TypeError) as exc:  # a series the forecaster cannot read, in its own words
            return error(ApiError(400, f"cannot forecast these values: {exc}", "values"), "forecast")
        metrics.add("rnnlab_requests_total", endpoint="forecast", code="200")
        return {"object": "forecast", "model": ask.model, **result}

    @app.post("/v1/completions")
    async def completions(request: Request):
        try:
            require_ready()
            ask = parse_completion(await body_of(request), served.models, limits)
            _text_only(served.models, ask.model)
            lm = served.models[ask.model]
            prompts = []
            for prompt in ask.prompts:
                ids, text = lm.prompt_ids(prompt, unknown="replace")
                prompts.append((ids, ids if text else []))
            job = Job(ask, make_choices(ask, prompts), asyncio.get_running_loop())
            served.workers[ask.model].submit(job)
        except ApiError as exc:
            return error(exc, "completions")
        except RnnlabError as exc:
            return error(ApiError(400, exc.message, "prompt"), "completions")
        if ask.stream:
            metrics.add("rnnlab_requests_total", endpoint="completions", code="200")
            return StreamingResponse(_sse(job, ask, served.workers[ask.model]), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        try:
            result = await _collect(job, ask, request)
        except ApiError as exc:
            return error(exc, "completions")
        finally:
            job.cancel()  # a no-op once done; frees the rows if this handler was cancelled
            served.workers[ask.model].wake()
        metrics.add("rnnlab_requests_total", endpoint="completions", code="200")
        return result

    return app


def _text_only(models: dict[str, Any], name: str) -> None:
    if not is_text_model(models[name]):
        raise ApiError(400, f"{name!r} is a forecasting model: use /v1/forecast", "model", "wrong_model_kind")


def _forecast(forecaster, ask) -> dict[str, Any]:
    """Forecast after the request's values (or the fitted series), as JSON-ready lists."""
    series = None
    if ask.values is not None:
        from rnnlab.forecasting.series import from_array

        start, freq = None, None
        if ask.timestamps is not None:
            import pandas as pd

            try:
                index = pd.DatetimeIndex(ask.timestamps)
            except (ValueError, TypeError) as exc:
                raise ApiError(400, f"timestamps are not dates ({exc})", "timestamps", "invalid_value") from None
            freq = pd.infer_freq(index) if len(index) >= 3 else None
            if freq is None:
                raise ApiError(400, "timestamps must be at least 3, evenly spaced", "timestamps", "invalid_value")
            start = index[0]
        series = from_array(ask.values, start=start, freq=freq, name="request")
    result = forecaster.predict(ask.horizon, series=series)
    levels = result.levels if ask.levels is None else ask.levels
    missing = [level for level in levels if level not in result.intervals]
    if missing:
        raise ApiError(400, f"this model gives the interval levels {list(result.levels)} (asked for {missing})",
                       "levels", "invalid_value")
    history = series if series is not None else getattr(forecaster, "series", None)
    tail = min(len(history), max(100, 5 * result.horizon), 500) if history is not None else 0
    return {"history": {"timestamps": [str(t) for t in history.index[-tail:]] if tail else [],
                        "values": history.values[-tail:].tolist() if tail else []},
            "horizon": result.horizon, "columns": list(result.columns),
            "timestamps": [str(t) for t in result.index], "values": result.values.tolist(),
            "intervals": {str(level): {"lower": result.intervals[level][0].tolist(),
                                       "upper": result.intervals[level][1].tolist()} for level in levels}}


def _model_card(name: str, lm) -> dict[str, Any]:
    if not is_text_model(lm):
        return {"id": name, "object": "model", "created": 0, "owned_by": "rnnlab",
                "rnnlab": {"kind": "forecast", "model": lm.name, "horizon": getattr(lm, "horizon", None)}}
    c = lm.model.config
    return {"id": name, "object": "model", "created": int(lm.path.stat().st_mtime) if lm.path else 0,
            "owned_by": "rnnlab",
            "rnnlab": {"kind": "text", "cell": c.cell, "layers": c.layers, "hidden_size": c.hidden_size,
                       "level": lm.tokenizer.kind, "vocab_size": c.vocab_size}}


def _next_words(lm, prompt: str, k: int):
    """The k most likely next words (a char model's are found by a beam over characters), as interactive
    mode's /words offers them."""
    from rnnlab.generation.session import Session

    session = Session(lm, SampleConfig(unknown="replace"))
    session.add_text(prompt)
    return session.candidates(k)


class _Choices:
    """Texts, token log-probabilities and finish reasons of a job's choices, as they arrive."""

    def __init__(self, ask: CompletionRequest):
        self.ask = ask
        per_prompt = [(p if ask.echo else "") for p in ask.prompts for _ in range(ask.n)]
        self.texts = list(per_prompt)
        self.finish: list[str | None] = [None] * len(per_prompt)
        self.logprobs = [{"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
                         for _ in per_prompt]
        self.completion_tokens = 0

    def token(self, index: int, piece: str, info) -> dict | None:
        """Record one token event; the logprobs of this token in OpenAI's shape (None when not asked)."""
        offset = len(self.texts[index])
        self.texts[index] += piece
        if info is None:
            return None
        token, logprob, top = info
        entry = {"tokens": [token], "token_logprobs": [logprob], "top_logprobs": [dict(top)],
                 "text_offset": [offset]}
        for key, values in entry.items():
            self.logprobs[index][key].extend(values)
        return entry

    def usage(self, prompt_tokens: int) -> dict[str, int]:
        return {"prompt_tokens": prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": prompt_tokens + self.completion_tokens}


def _prompt_tokens(job: Job) -> int:
    return sum(len(c.prompt_ids) for c in job.choices if c.index % job.request.n == 0)


async def _collect(job: Job, ask: CompletionRequest, request=None) -> dict[str, Any]:
    """A whole (non-streamed) completion; a client that hangs up meanwhile frees its rows within a second."""
    state = _Choices(ask)
    while True:
        try:
            event = await asyncio.wait_for(job.events.get(), 1.0)
        except TimeoutError:
            if request is not None and await request.is_disconnected():
                raise asyncio.CancelledError from None
            continue
        if event[0] == "error":
            raise event[1]
        if event[0] == "done":
            break
        if event[0] == "token":
            _, index, piece, info = event
            state.token(index, piece, info)
        elif event[0] == "finish":
            state.finish[event[1]] = event[2]
    state.completion_tokens = sum(c.tokens for c in job.choices)
    return {"id": job.id, "object": "text_completion", "created": job.created, "model": ask.model,
            "choices": [{"text": state.texts[i], "index": i,
                         "logprobs": state.logprobs[i] if ask.logprobs is not None else None,
                         "finish_reason": state.finish[i]} for i in range(len(state.texts))],
            "usage": state.usage(_prompt_tokens(job))}


def _merge_pieces(events: list[tuple], merge: bool, started: set[int]) -> list[tuple]:
    """Consecutive token events of one choice as one (when no per-token log-probabilities are asked).

    A choice's first text stays a chunk of its own, merged with nothing after it: the worker sends it at
    once (the time to the first token), and an HTTP side that reads it late, with later tokens already
    queued, still sends it alone. `started`: the choices whose first text has been seen (updated)."""
    if not merge:
        return events
    out: list[tuple] = []
    alone = -1  # the position in `out` of a first text, which nothing is merged into
    for event in events:
        if event[0] == "token" and out and out[-1][0] == "token" and out[-1][1] == event[1] and \
                len(out) - 1 != alone:
            out[-1] = ("token", event[1], out[-1][2] + event[2], None)
        else:
            out.append(event)
        if event[0] == "token" and event[2] and event[1] not in started:
            started.add(event[1])
            alone = len(out) - 1
    return out


async def _sse(job: Job, ask: CompletionRequest, worker: ModelWorker) -> AsyncIterator[str]:
    """Server-sent events: one chunk per piece, a chunk with each finish reason, usage if asked, [DONE].

    A client that hangs up is noticed by Starlette's StreamingResponse, which listens for the disconnect
    beside the stream (ASGI spec 2.3, uvicorn's) and cancels it: the `finally` below then frees the rows.
    Asking `request.is_disconnected()` here as well, once per chunk, cost more of the event loop than
    writing the chunk (an anyio cancel scope per call) and delayed every client's first token."""
    state = _Choices(ask)
    started: set[int] = set()  # the choices whose first text has gone out

    def chunk(choices: list[dict], **extra) -> str:
        body = {"id": job.id, "object": "text_completion", "created": job.created, "model": ask.model,
                "choices": choices, **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    try:
        if ask.echo:
            for i, prompt in enumerate(state.texts):
                if prompt:
                    yield chunk([{"text": prompt, "index": i, "logprobs": None, "finish_reason": None}])
        while True:
            # Everything the worker has sent since the last write: a client slower than the decode loop
            # gets several tokens per chunk instead of an ever longer backlog.
            events = [await job.events.get()]
            while not job.events.empty():
                events.append(job.events.get_nowait())
            out, ended = [], False
            for event in _merge_pieces(events, ask.logprobs is None, started):
                if event[0] == "error":
                    out.append(f"data: {json.dumps(event[1].body())}\n\n")
                    ended = True
                    break
                if event[0] == "done":
                    if ask.include_usage:
                        state.completion_tokens = sum(c.tokens for c in job.choices)
                        out.append(chunk([], usage=state.usage(_prompt_tokens(job))))
                    ended = True
                    break
                if event[0] == "token":
                    _, index, piece, info = event
                    entry = state.token(index, piece, info)
                    if piece or entry is not None:
                        out.append(chunk([{"text": piece, "index": index,
                                           "logprobs": entry if ask.logprobs is not None else None,
                                           "finish_reason": None}]))
                elif event[0] == "finish":
                    out.append(chunk([{"text": "", "index": event[1], "logprobs": None,
                                       "finish_reason": event[2]}]))
            if out:
                yield "".join(out)
            if ended:
                break
        yield "data: [DONE]\n\n"
    finally:
        job.cancel()  # the client closed the stream (or it ended): the rows leave at the next step
        worker.wake()
