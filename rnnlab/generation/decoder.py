"""Stateful decoding: the prompt runs through the network once, then one step per new token.

No window is ever re-read: each step feeds the single token just chosen together with the carried hidden
state, so a token costs one recurrent step whatever the length of the text so far. Rows of a batch
sample independently and stop independently (on a stop string or the length), and every chosen token's
log-probability under the model (before any transform) is recorded.

The prompt is one call of the model's fused forward; the steps after it go through a `Stepper`
(stepper.py: the cell equations on preallocated buffers, for the models it covers, else the model's own
forward) and a `TokenSampler` (sampler.py: the transform chain with few ops and noise drawn ahead), so
the per-token loop costs little beyond the arithmetic. Neither changes which tokens a seed gives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from rnnlab.config import SampleConfig
from rnnlab.generation.sampler import TokenSampler
from rnnlab.generation.stepper import make_stepper


@dataclass
class Sample:
    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    stopped: str = "length"


def prime(model, prompt_ids: Sequence[int], batch_size: int, device, state=None):
    """Run the prompt once; return (logits for the next token [B, V], state)."""
    ids = torch.tensor([list(prompt_ids)], dtype=torch.long, device=device).expand(batch_size, -1)
    logits, state = model(ids, state)
    return logits[:, -1], state


@torch.inference_mode()
def decode(model, prompt_ids: Sequence[int], config: SampleConfig, device="cpu",
           on_tokens: Callable[[torch.Tensor], bool | None] | None = None,
           is_stopped: Callable[[int, int], bool] | None = None,
           state=None, logits: torch.Tensor | None = None,
           banned: Sequence[int] = ()) -> tuple[list[Sample], object]:
    """Generate `config.length` tokens for `config.num_samples` rows after `prompt_ids`.

    `on_tokens(ids[B])` is called after each step (streaming); `is_stopped(row, token_id)` is told each
    row's new token and answers whether that row has now produced its stop string. Passing `state` and
    `logits` continues from an earlier call (interactive sessions) instead of priming. Returns the
    samples and (the final state, the next-token logits), the state in the model's own format.
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
    stepper = make_stepper(model, state, batch, config.length)
    tokens = torch.empty(config.length, batch, dtype=torch.long, device=device)
    logprobs = torch.empty(config.length, batch, device=device)
    # Per-step views made in one go: row t of tokens as ids[B] and as [B, 1], row t of logprobs as [B, 1].
    step_ids, step_id_columns = tokens.unbind(0), tokens.unsqueeze(2).unbind(0)
    step_logprob_columns = logprobs.unsqueeze(2).unbind(0)
    lengths = [config.length] * batch
    active = set(range(batch))
    steps = 0
    stepped = False
    for t in range(config.length):
        logits = logits.float()
        choice = sampler.choose(logits, out=step_ids[t])  # [B]
        # The model's own log-probability of the choice, before bans and sampling transforms.
        sampler.log_prob(logits, step_id_columns[t], out=step_logprob_columns[t])
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
    token_rows = tokens[:steps].T.tolist()
    logprob_rows = logprobs[:steps].T.tolist()
    samples = [Sample(ids=token_rows[r][:lengths[r]], logprobs=logprob_rows[r][:lengths[r]],
                      stopped="length" if lengths[r] == config.length and r in active else "stop")
               for r in range(batch)]
    return samples, (state, logits)
