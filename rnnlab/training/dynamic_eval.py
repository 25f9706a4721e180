"""Dynamic evaluation (Krause et al., 2018, "Dynamic Evaluation of Neural Sequence Models").

The text is read once, in order, in segments of `seq_len` tokens. Each segment is scored first, then
the model takes one gradient step on it, so the next segments are predicted by a model that has adapted
to the recent text (names, style). Every token is scored before the model has seen it, which keeps the
figure an honest held-out number. The caller's model is left untouched: a copy adapts.
"""

from __future__ import annotations

import contextlib
import copy

import torch
import torch.nn.functional as F

from rnnlab.models.rnn_lm import detach_state
from rnnlab.training.metrics import summarize


def evaluate_dynamic(model, ids: torch.Tensor, chars_per_token: float, device: torch.device,
                     seq_len: int = 64, lr: float = 0.1, decay: float = 0.0) -> dict[str, float]:
    """Score `ids` with dynamic evaluation; `lr` is the SGD step size, `decay` pulls the weights back
    towards the trained ones each step (0 = none)."""
    adapted = copy.deepcopy(model).to(device)
    adapted.eval()  # no dropout: adaptation, not regularised training
    start = [p.detach().clone() for p in adapted.parameters()]
    # cuDNN refuses a backward pass through an RNN in eval mode; PyTorch's own kernels do not.
    on_cuda = torch.device(device).type == "cuda"
    with torch.backends.cudnn.flags(enabled=False) if on_cuda else contextlib.nullcontext():
        total, count, correct = 0.0, 0, 0
        state = None
        n = ids.numel() - 1
        for lo in range(0, n, seq_len):
            x = ids[lo:min(lo + seq_len, n)][None].to(device)
            y = ids[lo + 1:min(lo + seq_len, n) + 1][None].to(device)
            logits, new_state = adapted(x, state)
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum")
            total += loss.detach().item()
            count += y.numel()
            correct += int((logits.detach().argmax(-1) == y).sum())
            adapted.zero_grad(set_to_none=True)
            (loss / y.numel()).backward()
            with torch.no_grad():
                for p, p0 in zip(adapted.parameters(), start):
                    if p.grad is not None:
                        p.add_(p.grad, alpha=-lr)
                    if decay:
                        p.add_(p0 - p, alpha=decay)
            state = detach_state(new_state)
        return summarize(total, count, correct, count * chars_per_token)
