"""Stateful decoding: the prompt runs through the network once, then one step per new token.

No window is ever re-read: each step feeds the single token just chosen together with the carried hidden
state, so a token costs one recurrent step whatever the length of the text so far. Rows of a batch
sample independently and stop independently (on a stop string or the length), and every chosen token's
log-probability under the model (before any transform) is recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from rnnlab.config import SampleConfig
from rnnlab.generation.transforms import build_chain, is_greedy, next_token


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
    row's new token and answers whether that row has now produced its stop string. Passing `state` and `logits` continues from an earlier call
    (interactive sessions) instead of priming. Returns the samples and the final state.
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
    chain = build_chain(config)
    greedy = is_greedy(config)
    ban = torch.tensor(sorted(set(banned)), dtype=torch.long, device=device)
    ban_bias = None
    if ban.numel():
        ban_bias = torch.zeros(logits.shape[-1], device=device).index_fill(0, ban, float("-inf"))
    tokens = torch.empty(config.length, batch, dtype=torch.long, device=device)
    logprobs = torch.empty(config.length, batch, device=device)
    lengths = [config.length] * batch
    active = set(range(batch))
    steps = 0
    for t in range(config.length):
        logits = logits.float()
        allowed = logits + ban_bias if ban_bias is not None else logits
        choice = next_token(allowed, chain, greedy, generator)  # [B]
        tokens[t] = choice
        # The model's own log-probability of the choice, before bans and sampling transforms.
        logprobs[t] = torch.log_softmax(logits, dim=-1).gather(1, choice[:, None])[:, 0]
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
        step_logits, state = model(choice[:, None], state)  # [B, 1, V]
        logits = step_logits[:, -1]
    token_rows = tokens[:steps].T.tolist()
    logprob_rows = logprobs[:steps].T.tolist()
    samples = [Sample(ids=token_rows[r][:lengths[r]], logprobs=logprob_rows[r][:lengths[r]],
                      stopped="length" if lengths[r] == config.length and r in active else "stop")
               for r in range(batch)]
    return samples, (state, logits)
