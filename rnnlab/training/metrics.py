"""Language-model metrics as pure functions of summed quantities, and the evaluation pass that sums them.

Bits per character are total bits over the characters the predicted tokens cover, whatever the token
level, so char, word and BPE models can be compared on the same text.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rnnlab.data.batching import Stream, as_ids, gather, lanes_view, stream_length

# Tokens read, unscored, before each evaluation row after the first: a char LSTM's useful memory is a
# few hundred characters, so rows cut from one stream then score as one long row would.
_WARMUP = 256

LN2 = math.log(2.0)


def perplexity(loss_nats: float) -> float:
    return math.exp(min(loss_nats, 700.0))


def bits_per_char(total_nats: float, n_chars: float) -> float:
    return total_nats / LN2 / max(n_chars, 1.0)


def summarize(total_nats: float, n_tokens: int, n_correct: int, n_chars: float) -> dict[str, float]:
    """Mean loss per token (nats), perplexity, bits per character, next-token accuracy."""
    loss = total_nats / max(n_tokens, 1)
    return {"loss": loss, "perplexity": perplexity(loss), "bpc": bits_per_char(total_nats, n_chars),
            "accuracy": n_correct / max(n_tokens, 1), "tokens": n_tokens}


@torch.inference_mode()
def evaluate_ids(model, ids: Stream, chars_per_token: float, device: torch.device,
                 batch_size: int = 16, seq_len: int = 256, window: int | None = None) -> dict[str, float]:
    """Score every predictable token of `ids` (a 1-D stream: a tensor, or a numpy array / memmap of any
    integer dtype, read a batch at a time and never converted whole).

    Sequence models read the stream as `batch_size` parallel rows carrying state (rows shrink for short
    texts so every token is scored once); window models ("last" output) score each token from the
    `window` tokens before it.
    """
    was_training = model.training
    model.eval()
    try:
        if window is not None:
            return _evaluate_windows(model, ids, chars_per_token, device, window, batch_size * 16)
        return _evaluate_sequence(model, ids, chars_per_token, device, batch_size, seq_len)
    finally:
        model.train(was_training)


def _evaluate_sequence(model, ids, chars_per_token, device, batch_size, seq_len):
    n = stream_length(ids) - 1
    # Rows of at least ~1,000 tokens, each warmed up on the tokens before it (see _warm_state).
    rows = max(1, min(batch_size, n // max(seq_len, 1024)))
    row_len = n // rows
    inputs = lanes_view(ids, 0, rows, row_len)  # [rows, row_len] views of the stream
    targets = lanes_view(ids, 1, rows, row_len)
    totals = [0.0, 0, 0]  # nats, tokens, correct
    state = _warm_state(model, ids, rows, row_len, device)
    for lo in range(0, row_len, seq_len):
        state = _score(model, as_ids(inputs[:, lo:lo + seq_len]), as_ids(targets[:, lo:lo + seq_len]), state,
                       device, totals)
    tail = n - rows * row_len
    if tail:
        # The last row ends where the tail begins, so its state carries straight on into it.
        last = tuple(s[:, -1:].contiguous() for s in state) if isinstance(state, tuple) \
            else state[:, -1:].contiguous()
        _score(model, as_ids(ids[rows * row_len:n])[None], as_ids(ids[rows * row_len + 1:])[None], last, device,
               totals)
    total, count, correct = totals
    return summarize(total, count, correct, count * chars_per_token)


def _warm_state(model, ids, rows: int, row_len: int, device):
    """The state each row starts from: row 0 from the empty state (the stream's own start, where the
    start-of-text context is), every later row from the state after reading the `_WARMUP` tokens before
    it, unscored, so that cutting the stream into parallel rows costs (almost) no context."""
    if rows < 2:
        return None
    w = min(_WARMUP, row_len)
    starts = torch.arange(1, rows) * row_len
    _, warm = model(gather(ids, starts[:, None] - w + torch.arange(w)).to(device))  # rows 1.. [L, rows - 1, H]

    def with_empty_row(s: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.zeros_like(s[:, :1]), s], dim=1)

    return tuple(with_empty_row(s) for s in warm) if isinstance(warm, tuple) else with_empty_row(warm)


def _score(model, inputs, targets, state, device, totals):
    x, y = inputs.to(device), targets.to(device)
    logits, state = model(x, state)
    totals[0] += float(F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1),
                                       reduction="sum"))
    totals[1] += y.numel()
    totals[2] += int((logits.argmax(-1) == y).sum())
    return state


def _evaluate_windows(model, ids, chars_per_token, device, window, batch_size):
    count = stream_length(ids) - window  # windows start at 0 .. count - 1
    offsets = torch.arange(window)
    totals = [0.0, 0, 0]  # nats, tokens, correct
    for lo in range(0, count, batch_size):
        s = torch.arange(lo, min(lo + batch_size, count))  # this batch's starts only, never all of them
        _score(model, gather(ids, s[:, None] + offsets), gather(ids, s + window), None, device, totals)
    total, count, correct = totals
    return summarize(total, count, correct, count * chars_per_token)


@torch.inference_mode()
def evaluate_prefixes(model, inputs: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor,
                      device: torch.device) -> dict[str, float]:
    """Score right-padded prefix rows (the prefix objective); one token each, counted as one character."""
    was_training = model.training
    model.eval()
    try:
        logits, _ = model(inputs.to(device), None, lengths)
        y = targets.to(device)
        total = float(F.cross_entropy(logits.float(), y, reduction="sum"))
        correct = int((logits.argmax(-1) == y).sum())
    finally:
        model.train(was_training)
    n = targets.numel()
    return summarize(total, n, correct, n)
