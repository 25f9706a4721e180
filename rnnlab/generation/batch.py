"""Continuous batching: rows join and leave one running decode, each with its own sampling settings.

A recurrent model's whole context is its state ([layers, B, H]), so serving many requests needs no
KV cache: the server keeps one batch per model and, between two steps,

    rows   a b c        (step)   a b c   -- c finished -->  a b      -- d admitted (prompt primed) --> a b d
    state  [L, 3, H]                                         select     cat the primed state
    logits [3, V]                                            rows 0,1   and next-token logits

then chooses one token per row and steps the stack once for all of them (`make_stepper` once, then
`Stepper.resized` whenever the rows change: the prepared weights are kept). Each row keeps its own settings: temperature, top-k, top-p, frequency and presence
penalties (over its own generated ids) and its own `torch.Generator`, whose Gumbel noise is drawn for that
row alone: a seeded row chooses the tokens `next_token` would with that generator, whichever rows share
its batch. The transforms are those of transforms.py, applied with one value per row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from rnnlab.generation.stepper import make_stepper, select_rows
from rnnlab.generation.transforms import (
    FrequencyPenalty,
    PresencePenalty,
    Temperature,
    TopK,
    TopP,
    gumbel_,
    outside_nucleus,
)

__all__ = ["RowSettings", "RowToken", "ContinuousDecoder"]

# The stepper decides whether to fold its input table by how many steps it will run; a server's batch
# runs indefinitely.
_STEPS_HINT = 4096


@dataclass(frozen=True)
class RowSettings:
    """One row's sampling settings (OpenAI's names); temperature 0 is greedy. Validated by the transforms."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    seed: int | None = None
    logprobs: int = 0  # alternatives reported per token (0: only the chosen token's log-probability)

    def __post_init__(self) -> None:
        if self.temperature != 0:
            Temperature(self.temperature)
        TopP(self.top_p)
        if self.top_k:
            TopK(self.top_k)
        FrequencyPenalty(self.frequency_penalty)
        PresencePenalty(self.presence_penalty)


@dataclass
class RowToken:
    """What one row chose at one step: the id, its log-probability and the `logprobs` most likely ids."""

    key: object
    id: int
    logprob: float
    top: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class _Row:
    key: object
    settings: RowSettings
    generator: torch.Generator | None  # a seeded row's own; None: the decoder's shared one


class ContinuousDecoder:
    """The rows of one model's running batch. `add` and `remove` take effect at the next `step`.

    `banned` ids are never chosen. Not thread-safe: one thread (the server's worker) drives it.
    """

    def __init__(self, model, device="cpu", banned: Sequence[int] = ()):
        self.model, self.device = model.eval(), torch.device(device)
        self.vocab = model.config.vocab_size
        self.ban_bias = torch.zeros(self.vocab, device=self.device)
        if banned:
            self.ban_bias[list(banned)] = -math.inf
        self.rows: list[_Row] = []
        self.state = None  # the model's state for self.rows, None while empty
        self.logits: Tensor | None = None  # [B, V] next-token logits of self.rows
        self.counts: Tensor | None = None  # [B, V] generated-id counts (penalties)
        self.stepper = None
        self._template = None  # the first stepper built: later ones are resized from it
        self._pending: Tensor | None = None  # the tokens chosen last step, not yet run through the stack
        self._joining: list[tuple[_Row, Sequence[int]]] = []
        self._leaving: set = set()
        self._columns: _Columns | None = None
        self.shared = torch.Generator(device=self.device if self.device.type == "cuda" else "cpu")
        self.shared.seed()  # the noise of rows without a seed

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, key, prompt_ids: Sequence[int], settings: RowSettings) -> None:
        """Queue a row (a hashable `key`) that starts after `prompt_ids` (primed when it joins)."""
        if not prompt_ids:
            raise ValueError("a row needs at least one prompt id")
        generator = None
        if settings.seed is not None:
            generator = torch.Generator(device=self.device if self.device.type == "cuda" else "cpu")
            generator.manual_seed(settings.seed)
        self._joining.append((_Row(key, settings, generator), list(prompt_ids)))

    def remove(self, key) -> None:
        """Drop a row (finished or cancelled) before the next step."""
        self._leaving.add(key)

    @torch.inference_mode()
    def step(self) -> list[RowToken]:
        """Run last step's tokens through the stack, apply joins and leaves, choose one token per row."""
        if self._pending is not None:
            self.logits = self.stepper.step(self._pending).float()
            self._pending = None
        self._regroup()
        if not self.rows:
            return []
        chosen = self._choose(self.logits)  # [B]
        log_probs = torch.log_softmax(self.logits, dim=-1)  # the model's own, before any transform
        chosen_lp = log_probs.gather(1, chosen[:, None])[:, 0].tolist()
        want = max(r.settings.logprobs for r in self.rows)
        top = torch.topk(log_probs, min(want, self.vocab), dim=-1) if want else None
        ids = chosen.tolist()
        self.counts[torch.arange(len(ids), device=self.device), chosen] += 1
        out = []
        for b, row in enumerate(self.rows):
            alternatives = []
            if top is not None and row.settings.logprobs:
                k = row.settings.logprobs
                alternatives = list(zip(top.indices[b, :k].tolist(), top.values[b, :k].tolist()))
            out.append(RowToken(row.key, ids[b], chosen_lp[b], alternatives))
        self._pending = chosen
        return out

    # -- rows joining and leaving
    def _regroup(self) -> None:
        if not self._joining and not self._leaving:
            return
        leaving, self._leaving = self._leaving, set()
        joining, self._joining = self._joining, []
        keep = [b for b, r in enumerate(self.rows) if r.key not in leaving]
        state, logits, counts = None, None, None
        if keep and len(keep) < len(self.rows):
            index = torch.tensor(keep, device=self.device)
            state = select_rows(self._current_state(), index)
            logits, counts = self.logits.index_select(0, index), self.counts.index_select(0, index)
        elif keep:
            state, logits, counts = self._current_state(), self.logits, self.counts
        rows = [self.rows[b] for b in keep]
        # Prompts of one length are primed together, as one batch (a cancelled row never joins).
        by_length: dict[int, list[tuple[_Row, list[int]]]] = {}
        for row, prompt_ids in joining:
            if row.key not in leaving:
                by_length.setdefault(len(prompt_ids), []).append((row, prompt_ids))
        for group in by_length.values():
            ids = torch.tensor([prompt_ids for _, prompt_ids in group], dtype=torch.long, device=self.device)
            group_logits, group_state = self.model(ids)  # [k, T, V]
            group_logits = group_logits[:, -1].float()
            state = group_state if state is None else _cat(state, group_state)
            logits = group_logits if logits is None else torch.cat([logits, group_logits])
            zeros = torch.zeros(len(group), self.vocab, device=self.device)
            counts = zeros if counts is None else torch.cat([counts, zeros])
            rows += [row for row, _ in group]
        self.rows, self.state, self.logits, self.counts = rows, state, logits, counts
        self._columns = _Columns.of(rows, self.vocab, self.device)
        self.stepper = None
        if rows:
            if self._template is None:
                self._template = make_stepper(self.model, None, 1, _STEPS_HINT)
            self.stepper = self._template.resized(state, len(rows))

    def _current_state(self):
        return self.stepper.state() if self.stepper is not None else self.state

    # -- the per-row transform chain
    def _choose(self, logits: Tensor) -> Tensor:
        """ids[B]: each row's token under its own settings (see the module docstring)."""
        c = self._columns
        if c.frequency is not None:
            logits = logits - c.frequency * self.counts
        if c.presence is not None:
            logits = logits - c.presence * (self.counts > 0).float()
        logits = logits + self.ban_bias
        if c.all_greedy:
            return logits.argmax(dim=-1)
        if c.temperature is not None:
            logits = logits / c.temperature
        if c.top_k is not None:
            # Rank of each token in its row; a row keeps its k best (all, when top-k is off).
            order = logits.argsort(dim=-1, descending=True, stable=True)
            ranks = torch.empty_like(order).scatter_(1, order, torch.arange(self.vocab, device=self.device)
                                                     .expand_as(order))
            logits = logits.masked_fill(ranks >= c.top_k, -math.inf)
        if c.threshold is not None:
            logits = logits.masked_fill(outside_nucleus(logits, c.threshold), -math.inf)
        sampled = (logits + self._noise()).argmax(dim=-1)
        if c.greedy is not None:
            sampled = torch.where(c.greedy, logits.argmax(dim=-1), sampled)
        return sampled

    def _noise(self) -> Tensor:
        """Gumbel noise [B, V]: a seeded row's from its own generator, drawn as next_token draws a [1, V]
        row (so its tokens do not depend on the batch); the unseeded rows' from one shared draw."""
        uniform = torch.empty(len(self.rows), self.vocab, device=self.device)
        c = self._columns
        for b in c.seeded:
            torch.rand((1, self.vocab), generator=self.rows[b].generator, device=self.device, out=uniform[b:b + 1])
        if c.unseeded is not None:
            shared = torch.rand((len(c.unseeded), self.vocab), generator=self.shared, device=self.device)
            uniform.index_copy_(0, c.unseeded, shared)
        return gumbel_(uniform)


@dataclass
class _Columns:
    """The rows' settings as [B, 1] columns, built when the rows change; None where no row needs one."""

    frequency: Tensor | None
    presence: Tensor | None
    temperature: Tensor | None
    top_k: Tensor | None
    threshold: Tensor | None
    greedy: Tensor | None
    all_greedy: bool
    seeded: list[int]
    unseeded: Tensor | None

    @classmethod
    def of(cls, rows: list[_Row], vocab: int, device) -> _Columns:
        settings = [r.settings for r in rows]

        def column(values, dtype=torch.float32):
            return torch.tensor(values, dtype=dtype, device=device)[:, None]

        greedy = [s.temperature == 0 for s in settings]
        unseeded = [b for b, s in enumerate(settings) if s.seed is None and not greedy[b]]
        return cls(
            frequency=column([s.frequency_penalty for s in settings])
            if any(s.frequency_penalty for s in settings) else None,
            presence=column([s.presence_penalty for s in settings])
            if any(s.presence_penalty for s in settings) else None,
            temperature=column([s.temperature or 1.0 for s in settings])
            if any(s.temperature not in (0, 1) for s in settings) else None,
            top_k=column([s.top_k or vocab for s in settings], torch.long) if any(s.top_k for s in settings) else None,
            threshold=column([TopP(s.top_p).threshold if s.top_p < 1 else math.inf for s in settings])
            if any(s.top_p < 1 for s in settings) else None,
            greedy=torch.tensor(greedy, device=device) if any(greedy) else None,
            all_greedy=all(greedy),
            seeded=[b for b, s in enumerate(settings) if s.seed is not None and not greedy[b]],
            unseeded=torch.tensor(unseeded, device=device) if unseeded else None)


def _cat(a, b):
    """Two states' rows side by side."""
    if isinstance(a, tuple | list):
        return type(a)(torch.cat([x, y], dim=1) for x, y in zip(a, b))
    return torch.cat([a, b], dim=1)
