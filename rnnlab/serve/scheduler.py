"""One decode loop per model, in a worker thread, shared by every request (continuous batching).

    HTTP handlers (event loop)                 worker thread (one per model)
    ──────────────────────────                 ─────────────────────────────
    submit(job) ─► waiting queue ──admit──►    ContinuousDecoder rows (<= --max-batch)
                   (<= --max-queue, else 429)  step: one token for every row
    job.events ◄── call_soon_threadsafe ◄───   TextStream per row: piece, stop, finish

Between two steps the worker admits waiting jobs while their rows fit (a job's n choices x prompts join
together, primed by the decoder), and drops rows that finished, whose client went away (`job.cancel()`,
called when a stream is closed) or that ran past the per-request timeout. The event loop never runs
the network; the worker never touches asyncio objects except through `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace

import torch

from rnnlab.generation.batch import ContinuousDecoder, RowSettings
from rnnlab.generation.text_stream import TextStream
from rnnlab.serve.metrics import Metrics
from rnnlab.serve.protocol import SEED_LIMIT, ApiError, CompletionRequest, Limits

__all__ = ["Choice", "Job", "ModelWorker"]

_ids = itertools.count()


@dataclass
class Choice:
    """One row of a job: a prompt's continuation, as OpenAI numbers choices (prompt-major, then n)."""

    index: int
    prompt_ids: list[int]
    context: list[int]
    settings: RowSettings
    stream: TextStream | None = None
    tokens: int = 0
    finish: str | None = None


@dataclass
class Job:
    """A completions request in flight; its events go to `events` on the handler's event loop.

    Events: ("token", choice index, released text, (token text, logprob, top alternatives) or None),
    ("finish", choice index, "stop" | "length"), ("done",), ("error", ApiError).
    """

    request: CompletionRequest
    choices: list[Choice]
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    id: str = field(default_factory=lambda: f"cmpl-{next(_ids)}-{int(time.time() * 1000)}")
    created: int = field(default_factory=lambda: int(time.time()))
    arrived: float = field(default_factory=time.monotonic)
    first_token: float | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def deadline(self) -> float:
        return self.arrived + self._timeout

    _timeout: float = 120.0

    def cancel(self) -> None:
        """The client is gone: the worker frees the job's rows before its next step."""
        self.cancelled.set()

    def emit(self, *event, urgent: bool = True) -> None:
        """Queue an event for the handler; the worker hands events over in batches (`Outbox`)."""
        self.outbox.put(self, event, urgent)

    outbox: Outbox | None = None


class Outbox:
    """Events for every job, handed to each event loop in one `call_soon_threadsafe`: one wake-up per flush
    instead of one per token (each is a write to the loop's self-pipe).

    `flush_if_due` hands them over at most every `interval` seconds, except that a first token, a finish
    or an error goes out at once: a streaming client then gets a few tokens per chunk instead of one, so
    the HTTP side (a JSON chunk, a socket write and a client-side parse per chunk) costs a few times less
    CPU per token, which a server sharing its cores with the decode loop turns into tokens/s. Time to
    first token is unchanged, and at the default 25 ms the text still arrives faster than a screen
    refreshes it.
    """

    def __init__(self, interval: float = 0.0):
        self.interval = interval
        self.pending: dict[asyncio.AbstractEventLoop, list[tuple[Job, tuple]]] = {}
        self.urgent = False
        self.last = time.monotonic()

    def put(self, job: Job, event: tuple, urgent: bool = True) -> None:
        self.pending.setdefault(job.loop, []).append((job, event))
        self.urgent = self.urgent or urgent

    def flush_if_due(self) -> None:
        if self.pending and (self.urgent or time.monotonic() - self.last >= self.interval):
            self.flush()

    def flush(self) -> None:
        pending, self.pending = self.pending, {}
        self.urgent, self.last = False, time.monotonic()
        for loop, items in pending.items():
            try:
                loop.call_soon_threadsafe(_deliver, items)
            except RuntimeError:  # the handlers' loop is closed: nobody is listening any more
                for job, _ in items:
                    job.cancel()


def _deliver(items: list[tuple[Job, tuple]]) -> None:
    for job, event in items:
        job.events.put_nowait(event)


def make_choices(request: CompletionRequest, prompts: list[tuple[list[int], list[int]]]) -> list[Choice]:
    """(prime ids, stream context) per prompt -> the request's choices; choice i's seed is seed + i."""
    choices = []
    for p, (prompt_ids, context) in enumerate(prompts):
        for i in range(request.n):
            index = p * request.n + i
            seed = request.settings.seed
            settings = request.settings if seed is None else replace(request.settings,
                                                                     seed=(seed + index) % SEED_LIMIT)
            choices.append(Choice(index, prompt_ids, context, settings))
    return choices


class ModelWorker:
    """The decode loop of one model (see the module docstring)."""

    def __init__(self, name: str, lm, limits: Limits, metrics: Metrics):
        self.name, self.lm, self.limits, self.metrics = name, lm, limits, metrics
        self.decoder = ContinuousDecoder(lm.model, lm.device, lm.banned_ids)
        self.cond = threading.Condition()
        self.waiting: deque[Job] = deque()
        self.active: dict[tuple[str, int], tuple[Job, Choice]] = {}
        self.jobs: dict[str, Job] = {}  # admitted, not yet done
        self.stopping = False
        self.outbox = Outbox(limits.stream_interval)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"rnnlab-serve-{name}", daemon=True)
        metrics.gauges.append(self._gauges)

    def _gauges(self):
        labels = {"model": self.name}
        return [("rnnlab_batch_rows", labels, len(self.active)),
                ("rnnlab_queue_length", labels, len(self.waiting))]

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify()
        self.thread.join(timeout=5)

    def submit(self, job: Job) -> None:
        """Queue a job; a full queue is a 429."""
        job._timeout = self.limits.timeout
        job.outbox = self.outbox
        with self.cond:
            if self.error is not None:
                raise ApiError(503, f"the decode loop of {self.name!r} has stopped ({self.error})", None,
                               "worker_stopped")
            if len(self.waiting) >= self.limits.max_queue:
                raise ApiError(429, f"{self.name!r} has {len(self.waiting)} requests waiting, its --max-queue; "
                               "retry shortly", None, "queue_full")
            self.waiting.append(job)
            self.cond.notify()

    def wake(self) -> None:
        with self.cond:
            self.cond.notify()

    # -- the loop
    def _run(self) -> None:
        if self.limits.threads is not None:
            # Set in this thread: OpenMP keeps a thread count per thread, and a new thread starts from the
            # process's default whatever the main thread set.
            torch.set_num_threads(self.limits.threads)
        try:
            while True:
                with self.cond:
                    while not self.stopping and not self.waiting and not self.active:
                        self.cond.wait()
                    if self.stopping:
                        return
                    admitted = self._admit()
                for job in admitted:
                    self._start(job)
                self._drop_cancelled_and_late()
                if not self.active:
                    self.outbox.flush()
                    continue
                tokens = self.decoder.step()
                self.metrics.add("rnnlab_decode_steps_total", model=self.name)
                self.metrics.add("rnnlab_generated_tokens_total", len(tokens), model=self.name)
                for token in tokens:
                    self._take(token)
                self.outbox.flush_if_due()
        except BaseException as exc:  # a bug in the loop: fail the jobs with a 503, never hang them
            self.error = exc
            for job in list(self.jobs.values()) + list(self.waiting):
                job.emit("error", ApiError(503, f"generation failed: {type(exc).__name__}: {exc}", None,
                                           "worker_failed"))
            self.outbox.flush()
            raise

    def _admit(self) -> list[Job]:
        """Waiting jobs that fit in the batch now (in arrival order; a cancelled one is dropped)."""
        admitted, rows = [], len(self.active)
        while self.waiting:
            job = self.waiting[0]
            if job.cancelled.is_set():
                self.waiting.popleft()
                self.metrics.add("rnnlab_cancelled_total", model=self.name)
                continue
            if time.monotonic() > job.deadline:
                self.waiting.popleft()
                self.metrics.add("rnnlab_timeouts_total", model=self.name)
                job.emit("error", ApiError(503, f"no place in the batch within the {self.limits.timeout:g} s "
                                                "request timeout; retry later", None, "timeout"))
                continue
            if rows + len(job.choices) > self.limits.max_batch:
                break
            self.waiting.popleft()
            rows += len(job.choices)
            admitted.append(job)
        return admitted

    def _start(self, job: Job) -> None:
        self.jobs[job.id] = job
        tokenizer = self.lm.tokenizer
        for choice in job.choices:
            choice.stream = TextStream(tokenizer, choice.context, job.request.stop, include_stop=False)
            if job.request.max_tokens == 0:
                self._finish(job, choice, "length")
                continue
            self.active[(job.id, choice.index)] = (job, choice)
            self.decoder.add((job.id, choice.index), choice.prompt_ids, choice.settings)
        self.metrics.add("rnnlab_prompt_tokens_total", sum(len(c.prompt_ids) for c in job.choices), model=self.name)
        self._maybe_done(job)

    def _drop_cancelled_and_late(self) -> None:
        now = time.monotonic()
        for job in list(self.jobs.values()):
            if job.cancelled.is_set():
                for choice in job.choices:
                    self.active.pop((job.id, choice.index), None)
                    self.decoder.remove((job.id, choice.index))
                del self.jobs[job.id]
                self.metrics.add("rnnlab_cancelled_total", model=self.name)
            elif now > job.deadline:
                self.metrics.add("rnnlab_timeouts_total", model=self.name)
                for choice in job.choices:
                    if choice.finish is None:
                        self._finish(job, choice, "length")  # what was written so far, cut at the timeout
                self._maybe_done(job)

    def _take(self, token) -> None:
        entry = self.active.get(token.key)
        if entry is None:
            return
        job, choice = entry
        first = job.first_token is None
        if first:
            job.first_token = time.monotonic()
            self.metrics.observe("rnnlab_time_to_first_token_seconds", job.first_token - job.arrived,
                                 model=self.name)
        piece = choice.stream.push(token.id)
        choice.tokens += 1
        info = None
        if job.request.logprobs is not None:
            text = self.lm.tokenizer.token_text
            info = (text(token.id), token.logprob, [(text(i), lp) for i, lp in token.top])
        finish = "stop" if choice.stream.stopped else ("length" if choice.tokens >= job.request.max_tokens
                                                       else None)
        job.emit("token", choice.index, piece, info, urgent=first)
        if finish is not None:
            self._finish(job, choice, finish)
            self._maybe_done(job)

    def _finish(self, job: Job, choice: Choice, reason: str) -> None:
        key = (job.id, choice.index)
        if self.active.pop(key, None) is not None:
            self.decoder.remove(key)
        if reason == "length" and not choice.stream.stopped:
            rest = choice.stream.finish()
            if rest:
                job.emit("token", choice.index, rest, None)
        choice.finish = reason
        job.emit("finish", choice.index, reason)

    def _maybe_done(self, job: Job) -> None:
        if job.id in self.jobs and all(c.finish is not None for c in job.choices):
            del self.jobs[job.id]
            self.metrics.observe("rnnlab_request_duration_seconds", time.monotonic() - job.arrived,
                                 model=self.name)
            job.emit("done")
