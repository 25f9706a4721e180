"""Stateful decoding: the prompt runs through the network once, then one step per new token.

No window is ever re-read: each step feeds the single token just chosen together with the carried hidden
state, so a token costs one recurrent step whatever the length of the text so far. Rows of a batch
sample independently and stop independently (on a stop string or the length), and every chosen token's
log-probability under the model (before any transform) is recorded.

The prompt is one call of the model's fused forward; the steps after it go through a `Stepper`
(stepper.py: the cell equations on preallocated buffers, for the models it covers; for window and prefix
models, the window re-read as they were trained; else the model's own forward) and a `TokenSampler` (sampler.py: the transform chain with few ops and noise drawn ahead), so
the per-token loop costs little beyond the arithmetic. Neither changes which tokens a seed gives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from rnnlab.config import SampleConfig
from rnnlab.errors import ConfigError
from rnnlab.generation.sampler import TokenSampler
from rnnlab.generation.stepper import make_stepper, reads_windows


@dataclass
class Sample:
    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    stopped: str = "length"


def prime(model, prompt_ids: Sequence[int], batch_size: int, device, state=None):
    """Run the prompt once; return (logits for the next token [B, V], state). A window model reads the
    last `context` ids of it, as it was trained."""
    ids = _prompt_rows(model, prompt_ids, batch_size, device)
    logits, state = model(ids, state)
    return (logits if reads_windows(model) else logits[:, -1]), state


def _prompt_rows(model, prompt_ids: Sequence[int], batch_size: int, device) -> torch.Tensor:
    ids = list(prompt_ids)
    width = getattr(model.config, "context", None) if reads_windows(model) else None
    if width is not None:
        ids = ids[-width:]
    return torch.tensor([ids], dtype=torch.long, device=device).expand(batch_size, -1)


# Tokens and log-probabilities are recorded in blocks of this many steps, so a long generation allocates
# as it goes (and, when the caller keeps nothing, reuses one block: constant memory however long).
_BLOCK_STEPS = 4096


class _Record:
    """The chosen tokens and their log-probabilities, [steps, B] each, one block at a time."""

    def __init__(self, batch: int, steps: int, device, keep: bool):
        self.batch, self.device, self.keep = batch, device, keep
        self.size = max(1, min(steps, _BLOCK_STEPS))
        self.blocks: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.filled = self.size  # the current block is full: the first step opens one

    def views(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(ids [B], ids [B, 1], logprobs [B, 1]) of the next step, opening a block when one is full."""
        if self.filled == self.size:
            if self.keep or not self.blocks:
                tokens = torch.empty(self.size, self.batch, dtype=torch.long, device=self.device)
                self.blocks.append((tokens, torch.empty(self.size, self.batch, device=self.device)))
            tokens, logprobs = self.blocks[-1]
            # Per-step views made in one go: row t as ids[B] and as [B, 1], logprobs row t as [B, 1].
            self._ids, self._columns = tokens.unbind(0), tokens.unsqueeze(2).unbind(0)
            self._logprobs = logprobs.unsqueeze(2).unbind(0)
            self.filled = 0
        t = self.filled
        self.filled += 1
        return self._ids[t], self._columns[t], self._logprobs[t]

    def rows(self, steps: int) -> tuple[list[list[int]], list[list[float]]]:
        """Each row's ids and log-probabilities over the first `steps` steps (kept blocks only)."""
        if not self.keep or not self.blocks:
            return [[] for _ in range(self.batch)], [[] for _ in range(self.batch)]
        tokens = torch.cat([b[0] for b in self.blocks])[:steps]
        logprobs = torch.cat([b[1] for b in self.blocks])[:steps]
        return tokens.T.tolist(), logprobs.T.tolist()


@torch.inference_mode()
def decode(model, prompt_ids: Sequence[int], config: SampleConfig, device="cpu",
           on_tokens: Callable[[torch.Tensor], bool | None] | None = None,
           is_stopped: Callable[[int, int], bool] | None = None,
           state=None, logits: torch.Tensor | None = None,
           banned: Sequence[int] = (), keep: bool = True) -> tuple[list[Sample], object]:
    """Generate `config.length` tokens for `config.num_samples` rows after `prompt_ids`.

    `on_tokens(ids[B])` is called after each step (streaming); `is_stopped(row, token_id)` is told each
    row's new token and answers whether that row has now produced its stop string. Passing `state` and
    `logits` continues from an earlier call (interactive sessions) instead of priming. Returns the
    samples and (the final state, the next-token logits), the state in the model's own format. With
    `keep=False` the samples hold no ids or log-probabilities (a caller that streams them needs none),
    and memory stays the same however long the generation.
    """
    model.eval()
    batch = config.num_samples
    if logits is None:
        logits, state = prime(model, prompt_ids, batch, device, state)
    generator = torch.Generator(device=device if torch.device(device).type == "cuda" else "cpu")
    if config.seed is not None:
        generator.manual_seed(config.seed)
    else:
        generator.seed()
    sampler = TokenSampler(config, batch, logits.shape[-1], generator, device, banned)
    rows = _prompt_rows(model, prompt_ids, batch, device) if reads_windows(model) else None
    stepper = make_stepper(model, state, batch, config.length, rows=rows)
    record = _Record(batch, config.length, device, keep)
    lengths = [config.length] * batch
    active = set(range(batch))
    steps = 0
    stepped = False
    for t in range(config.length):
        logits = logits.float()
        ids_out, id_column, logprob_column = record.views()
        choice = sampler.choose(logits, out=ids_out)  # [B]
        # The model's own log-probability of the choice, before bans and sampling transforms.
        sampler.log_prob(logits, id_column, out=logprob_column)
        steps = t + 1
        if on_tokens is not None:
            on_tokens(choice)
        if is_stopped is not None:
            ids = choice.tolist()
            for row in sorted(active):
                if is_stopped(row, ids[row]):
                    lengths[row] = t + 1
                    active.discard(row)
            if not active:
                break
        logits = stepper.step(choice)  # [B, V]
        stepped = True
    if stepped:  # the stepper's logits are a buffer it would overwrite: hand out a copy
        state, logits = stepper.state(), logits.clone()
    token_rows, logprob_rows = record.rows(steps)
    samples = [Sample(ids=token_rows[r][:lengths[r]], logprobs=logprob_rows[r][:lengths[r]],
                      stopped="length" if lengths[r] == config.length and r in active else "stop")
               for r in range(batch)]
    return samples, (state, logits)


_BYTES_PER_KEPT_TOKEN = 128


def check_memory(config: SampleConfig, vocab: int, keep: bool) -> None:
    """Refuse, before allocating anything, a generation that needs more memory than the machine has free:
    per row the sampler's [V] buffers (logits, probabilities, sorted copies, noise), and, when the tokens
    are kept, each token's id, log-probability and text."""
    free = _free_memory_bytes()
    if free is None:
        return
    need = config.num_samples * vocab * 4 * 12
    if keep:
        need += config.num_samples * config.length * _BYTES_PER_KEPT_TOKEN
    if need > free:
        raise ConfigError(f"--num-samples {config.num_samples} x --length {config.length} needs about "
                          f"{need / 2**30:.1f} GiB, more than the {free / 2**30:.1f} GiB this machine has free; "
                          "ask for fewer or shorter samples (one sample without --json streams in constant memory)")


def _free_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), or None where the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
