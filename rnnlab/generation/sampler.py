"""The decode loop's per-step token choice: the same tokens as `next_token`, with fewer tensor ops.

Why: with a small model a sampled token costs about as much in sampling as in the network, and most of
that is the fixed price of each tensor op and allocation, not arithmetic. The transforms in
transforms.py are pure functions (a new tensor per op, the clearest form to read and test); this module
makes the same choice for a whole decode with buffers allocated once:

- Gumbel noise is drawn ahead in blocks of steps. torch's CPU generator fills a tensor element by
  element in order, so one [steps, B, V] draw holds exactly the numbers that `steps` draws of [B, V]
  would, and the tokens are the ones `next_token` picks with the same generator. (Other devices draw
  step by step, as their generators promise no such thing.)
- Temperature and top-p, the common chain, run on preallocated buffers with `out=`: divide, softmax,
  sort, cumsum, compare, scatter back, add the noise, mask, argmax. Other chains (top-k, creativity)
  apply the transforms themselves.
- The chosen token's log-probability under the raw logits is a log_softmax and a gather into the
  caller's buffers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from rnnlab.config import SampleConfig
from rnnlab.generation.transforms import Temperature, TopP, build_chain, gumbel_, is_greedy

__all__ = ["TokenSampler"]

# Noise drawn at once is capped at this many float32 numbers (4 MiB).
_NOISE_BLOCK = 1 << 20


class _GumbelNoise:
    """Gumbel(0, 1) noise [B, V] for each step in turn, drawn `block` steps at a time."""

    def __init__(self, generator: torch.Generator, shape: tuple[int, int], device: torch.device, steps: int):
        self.generator, self.shape, self.device = generator, shape, device
        per_step = shape[0] * shape[1]
        self.block = max(1, min(steps, _NOISE_BLOCK // per_step)) if device.type == "cpu" else 1
        self.ready: tuple[Tensor, ...] = ()
        self.next_index = 0

    def next(self) -> Tensor:
        if self.next_index == len(self.ready):
            draws = torch.rand((self.block, *self.shape), generator=self.generator, device=self.device)
            self.ready = gumbel_(draws).unbind(0)
            self.next_index = 0
        self.next_index += 1
        return self.ready[self.next_index - 1]


class _Nucleus:
    """Top-p's mask of the tokens outside each row's nucleus, computed into fixed buffers (see TopP)."""

    def __init__(self, top_p: TopP, batch: int, vocab: int, device: torch.device):
        self.threshold = _cpu_scalar(top_p.threshold)
        self.probs = torch.empty(batch, vocab, device=device)
        self.sorted_probs = torch.empty_like(self.probs)
        self.order = torch.empty(batch, vocab, dtype=torch.long, device=device)
        self.cumulative = torch.empty_like(self.probs)
        self.drop_sorted = torch.zeros(batch, vocab, dtype=torch.bool, device=device)  # column 0 stays False
        self.drop = torch.empty_like(self.drop_sorted)
        # Sorted token j is dropped when tokens 0..j-1 already reach p: compare columns :-1, write 1:.
        self.reached, self.dropped_after = self.cumulative[:, :-1], self.drop_sorted[:, 1:]

    def outside(self, logits: Tensor) -> Tensor:
        """bool [B, V], True for the tokens outside the nucleus of softmax(logits); a reused buffer."""
        torch.softmax(logits, dim=-1, out=self.probs)
        torch.sort(self.probs, dim=-1, descending=True, out=(self.sorted_probs, self.order))
        torch.cumsum(self.sorted_probs, dim=-1, out=self.cumulative)
        torch.ge(self.reached, self.threshold, out=self.dropped_after)
        return self.drop.scatter_(1, self.order, self.drop_sorted)  # order is a permutation: all written


class TokenSampler:
    """Chooses one token per row per step for `config`, and reports its log-probability.

    `banned` tokens are never chosen. Logits must be float32 [batch, vocab] on `device`; the noise comes
    from `generator` in the order `next_token` would draw it, so a seed gives the same tokens.
    """

    def __init__(self, config: SampleConfig, batch: int, vocab: int, generator: torch.Generator,
                 device: torch.device | str = "cpu", banned: Sequence[int] = ()):
        device = torch.device(device)
        self.greedy = is_greedy(config)
        self.chain = build_chain(config)
        self.ban_bias = None
        if banned:
            ban = torch.tensor(sorted(set(banned)), dtype=torch.long, device=device)
            self.ban_bias = torch.zeros(vocab, device=device).index_fill_(0, ban, -math.inf)
        self.allowed = torch.empty(batch, vocab, device=device)
        self.keys = torch.empty_like(self.allowed)
        self.scaled = torch.empty_like(self.allowed)
        self.log_probs = torch.empty_like(self.allowed)
        self.noise = None if self.greedy else _GumbelNoise(generator, (batch, vocab), device, config.length)
        self.temperature, self.nucleus, self.fused = None, None, _is_temperature_top_p(self.chain)
        if self.fused:
            for transform in self.chain:
                if isinstance(transform, Temperature):
                    self.temperature = _cpu_scalar(transform.t)
                else:
                    self.nucleus = _Nucleus(transform, batch, vocab, device)

    def choose(self, logits: Tensor, out: Tensor) -> Tensor:
        """Write the chosen ids for logits[B, V] into out[B] (int64) and return it."""
        if self.ban_bias is not None:
            logits = torch.add(logits, self.ban_bias, out=self.allowed)
        if self.greedy:
            return torch.argmax(logits, dim=-1, out=out)
        noise = self.noise.next()
        if not self.fused:
            for transform in self.chain:
                logits = transform(logits)
            return torch.argmax(torch.add(logits, noise, out=self.keys), dim=-1, out=out)
        if self.temperature is not None:
            logits = torch.div(logits, self.temperature, out=self.scaled)
        keys = torch.add(logits, noise, out=self.keys)
        if self.nucleus is not None:
            keys.masked_fill_(self.nucleus.outside(logits), -math.inf)
        return torch.argmax(keys, dim=-1, out=out)

    def log_prob(self, logits: Tensor, chosen: Tensor, out: Tensor) -> Tensor:
        """log_softmax(logits)[row, chosen[row]] into out; chosen and out are [B, 1]."""
        torch.log_softmax(logits, dim=-1, out=self.log_probs)
        return torch.gather(self.log_probs, 1, chosen, out=out)


def _cpu_scalar(value: float) -> Tensor:
    """`value` as a 0-dim float32 CPU tensor, made once rather than wrapped afresh on every op.

    Ops treat it as they treat a Python number: cast to float32, and on a GPU passed to the kernel as an
    argument, so the results are the same bits.
    """
    return torch.tensor(value, dtype=torch.float32)


def _is_temperature_top_p(chain: list) -> bool:
    """True for the chains the fused path computes: temperature and/or top-p, in that order, or none."""
    kinds = [type(t) for t in chain]
    return kinds in ([], [Temperature], [TopP], [Temperature, TopP])
