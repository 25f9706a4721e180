"""Sampling as a chain of small, pure logits transforms (HuggingFace's LogitsProcessor idea).

Each transform maps logits[B, V] to a new logits[B, V] (the input is never modified) and validates its
setting when it is built, naming the command-line flag in the error. A removed token gets -inf, so a
later softmax gives it probability exactly 0.

The order is fixed, because the transforms do not commute (temperature changes which tokens make up the
top-p nucleus):

    logits --> Temperature --> TopK --> TopP --> sample (Gumbel-max: a draw from the softmax)
               (--temperature) (--top-k) (--top-p)

Penalties come first, before any of these (as OpenAI and vLLM apply them): they are transforms that also
see the ids generated so far, as counts[B, V] (`token_counts`), `(logits, counts) -> logits`:

    logits --> FrequencyPenalty --> PresencePenalty --> Temperature --> ...
               (- f * count)        (- p * [count > 0])

and a transform is in the chain only when its setting is not neutral (temperature 1, top-k 0 and
top-p 1 add nothing). `--strategy greedy` or `--temperature 0` means argmax and an empty chain;
`--strategy creativity` is the Keras tutorials' "pick uniformly among the k most likely tokens".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from rnnlab.config import SampleConfig
from rnnlab.errors import ConfigError

__all__ = [
    "Temperature",
    "TopK",
    "TopP",
    "UniformTopK",
    "FrequencyPenalty",
    "PresencePenalty",
    "token_counts",
    "outside_nucleus",
    "Transform",
    "build_chain",
    "is_greedy",
    "next_token",
    "gumbel_",
]

# Top-p compares a running sum of float32 probabilities with p. Exact boundaries (probabilities 0.5 and
# 0.3 with p = 0.8) land a few ulps either side of p after exp/normalise/cumsum, so a mass within this
# tolerance of p counts as having reached it; otherwise the nucleus size would depend on rounding.
_TOP_P_TOLERANCE = 1e-6


def _check_count(value: object, flag: str) -> None:
    # bool is an int subclass; `--top-k True` is a mistake, not k = 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{flag} must be an integer >= 1 (got {value!r})")


def _at_least_float32(x: Tensor) -> Tensor:
    # Probabilities in half precision lose the tail and drift in a cumsum over a large vocabulary.
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _keep_top_k(logits: Tensor, k: int, uniform: bool) -> Tensor:
    """A new tensor: the k largest entries of each row keep their logit (0 if `uniform`), the rest -inf.

    Exactly k survive even when logits tie at the boundary (ties go to whichever torch.topk returns).
    """
    values, indices = torch.topk(logits, k, dim=-1)  # [B, k]
    out = torch.full_like(logits, -math.inf)
    return out.scatter(-1, indices, torch.zeros_like(values) if uniform else values)


@dataclass(frozen=True)
class Temperature:
    """Divide the logits by t: t < 1 sharpens the distribution, t > 1 flattens it (softmax(logits / t))."""

    t: float

    def __post_init__(self) -> None:
        if isinstance(self.t, bool) or not isinstance(self.t, int | float) or not math.isfinite(self.t) \
                or self.t <= 0:
            # Temperature 0 is greedy decoding, which build_chain handles with no transform at all.
            raise ConfigError(f"--temperature must be > 0 (got {self.t!r})")

    def __call__(self, logits: Tensor) -> Tensor:
        """logits[B, V] -> logits[B, V] / t (a new tensor)."""
        return logits / self.t


@dataclass(frozen=True)
class TopK:
    """Keep the k largest logits of each row and set the others to -inf; a no-op when k >= V."""

    k: int

    def __post_init__(self) -> None:
        _check_count(self.k, "--top-k")

    def __call__(self, logits: Tensor) -> Tensor:
        """logits[B, V] -> logits[B, V] with all but the k largest of each row at -inf (a new tensor)."""
        if self.k >= logits.shape[-1]:
            return logits.clone()
        return _keep_top_k(logits, self.k, uniform=False)


@dataclass(frozen=True)
class TopP:
    """Nucleus sampling (Holtzman et al., 2020, "The Curious Case of Neural Text Degeneration").

    Keeps, per row, the smallest set of most likely tokens whose total probability (softmax of the
    incoming logits) is >= p; the most likely token is always kept. Kept tokens keep their logits, so
    the next softmax renormalises over the nucleus. One sort and one cumsum cover the whole batch.
    """

    p: float

    def __post_init__(self) -> None:
        if isinstance(self.p, bool) or not isinstance(self.p, int | float) or not 0.0 < self.p <= 1.0:
            raise ConfigError(f"--top-p must be in (0, 1] (got {self.p!r})")

    @property
    def threshold(self) -> float:
        """A running mass at or above this has reached p (see _TOP_P_TOLERANCE)."""
        return self.p - _TOP_P_TOLERANCE

    def __call__(self, logits: Tensor) -> Tensor:
        """logits[B, V] -> logits[B, V] with the tokens outside each row's nucleus at -inf (a new tensor)."""
        if self.p >= 1.0:
            # The nucleus is the whole vocabulary; skipping the tolerance keeps tiny-probability tokens.
            return logits.clone()
        return logits.masked_fill(outside_nucleus(logits, self.threshold), -math.inf)


def outside_nucleus(logits: Tensor, threshold: float | Tensor) -> Tensor:
    """bool [B, V]: True for the tokens outside each row's top-p nucleus of softmax(logits).

    `threshold` is p less the tolerance (`TopP.threshold`): one number, or one per row ([B, 1]).
    """
    probs = _at_least_float32(logits).softmax(dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)  # [B, V], most likely first
    cumulative = sorted_probs.cumsum(dim=-1)  # [B, V]: column j holds the mass of sorted tokens 0..j
    # Sorted token j is dropped when tokens 0..j-1 already reach p; token 0 never is.
    drop_sorted = torch.zeros_like(sorted_probs, dtype=torch.bool)
    drop_sorted[..., 1:] = cumulative[..., :-1] >= threshold
    return torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)  # back to vocabulary order


@dataclass(frozen=True)
class UniformTopK:
    """The Keras tutorials' "creativity": choose uniformly among the k most likely tokens.

    The k largest logits become 0 and the rest -inf, so the softmax is 1/k on each of the k
    (1/V everywhere when k >= V).
    """

    k: int

    def __post_init__(self) -> None:
        _check_count(self.k, "--top-k")

    def __call__(self, logits: Tensor) -> Tensor:
        """logits[B, V] -> [B, V] holding 0 at each row's k largest logits and -inf elsewhere (a new tensor)."""
        if self.k >= logits.shape[-1]:
            return torch.zeros_like(logits)
        return _keep_top_k(logits, self.k, uniform=True)


def _check_penalty(value: object, flag: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not -2.0 <= value <= 2.0:
        raise ConfigError(f"{flag} must be a number from -2 to 2 (got {value!r})")


@dataclass(frozen=True)
class FrequencyPenalty:
    """OpenAI's frequency_penalty: each token's logit less `penalty` times how often it was generated, so
    a positive penalty makes repeating a word less likely the more it is repeated (negative: more)."""

    penalty: float

    def __post_init__(self) -> None:
        _check_penalty(self.penalty, "frequency_penalty")

    def __call__(self, logits: Tensor, counts: Tensor) -> Tensor:
        """logits[B, V], counts[B, V] of the generated ids -> logits - penalty * counts (a new tensor)."""
        return logits - self.penalty * counts


@dataclass(frozen=True)
class PresencePenalty:
    """OpenAI's presence_penalty: `penalty` off the logit of every token generated at least once."""

    penalty: float

    def __post_init__(self) -> None:
        _check_penalty(self.penalty, "presence_penalty")

    def __call__(self, logits: Tensor, counts: Tensor) -> Tensor:
        """logits[B, V], counts[B, V] -> logits - penalty where a token has appeared (a new tensor)."""
        return logits - self.penalty * (counts > 0).to(logits.dtype)


def token_counts(ids: list[list[int]], vocab: int, device: torch.device | str = "cpu") -> Tensor:
    """counts[B, V] (float32): how often each row of `ids` holds each token; what the penalties read."""
    counts = torch.zeros(len(ids), vocab, device=device)
    for row, row_ids in enumerate(ids):
        if row_ids:
            counts[row].index_add_(0, torch.tensor(row_ids, dtype=torch.long, device=device),
                                   torch.ones(len(row_ids), device=device))
    return counts


Transform = Temperature | TopK | TopP | UniformTopK


def is_greedy(config: SampleConfig) -> bool:
    """True when decoding takes the argmax: `--strategy greedy`, or `--temperature 0` with any strategy."""
    return config.strategy == "greedy" or config.temperature == 0


def build_chain(config: SampleConfig) -> list[Transform]:
    """The transforms for `config`, in the fixed order temperature -> top-k -> top-p.

    Neutral settings add nothing, so the default-but-temperature config gives [Temperature(t)] and
    temperature 1, top-k 0, top-p 1 give []. Greedy decoding (see `is_greedy`) gives [].
    `--strategy creativity` gives [UniformTopK(top_k)]: a uniform choice ignores temperature and top-p.
    """
    if is_greedy(config):
        return []
    if config.strategy == "creativity":
        return [UniformTopK(config.top_k)]
    chain: list[Transform] = []
    if config.temperature != 1.0:
        chain.append(Temperature(config.temperature))
    if config.top_k > 0:
        chain.append(TopK(config.top_k))
    if config.top_p < 1.0:
        chain.append(TopP(config.top_p))
    return chain


def next_token(logits: Tensor, chain: list[Transform], greedy: bool,
               generator: torch.Generator | None = None) -> Tensor:
    """One token per row: ids[B] (int64) drawn from logits[B, V].

    Greedy takes the argmax of the raw logits (the chain is ignored). Otherwise the chain is applied in
    order and one token drawn per row from softmax(logits) by the Gumbel-max trick, using
    `generator`, which must live on the logits' device; the same generator state gives the same tokens.
    """
    if greedy:
        return logits.argmax(dim=-1)
    for transform in chain:
        logits = transform(logits)
    # The Gumbel-max trick: argmax(logits + Gumbel noise) is a draw from softmax(logits), exactly, with
    # no softmax or cumulative sum; several times cheaper than torch.multinomial on small batches.
    gumbel = gumbel_(torch.rand(logits.shape, generator=generator, device=logits.device))
    return (_at_least_float32(logits) + gumbel).argmax(dim=-1)  # [B]


def gumbel_(uniform: Tensor) -> Tensor:
    """Turn uniform [0, 1) draws into Gumbel(0, 1) noise -log(-log(u)), in place, and return them.

    u is clamped away from 0 first, so the noise is always finite.
    """
    return uniform.clamp_(min=1e-20).log_().neg_().log_().neg_()
