"""Token streams to training batches, for each objective, resumable at any step and shardable by rank.

Sequence objective (truncated BPTT, as in char-rnn and PyTorch's word_language_model). The stream is cut
into B equal rows that are read side by side, T tokens at a time; row b's state carries from one step
to the next because step i+1 continues exactly where step i stopped:

    stream  a b c d e f g h i j k l m n o p q r s t u v w x        B = 3, T = 3
    rows    a b c d e f g h | i j k l m n o p | q r s t u v w x
    step 0  inputs [a b c]  [i j k]  [q r s]   targets [b c d] [j k l] [r s t]
    step 1  inputs [d e f]  [l m n]  [t u v]   targets [e f g] [m n o] [u v w]

Each epoch starts the rows at a fresh offset in [0, T) drawn from (seed, epoch), so the cut points
between segments move from epoch to epoch; the draw depends on nothing else, which keeps resume exact.

Window objective (the Keras tutorials' many-to-one): every `window` tokens (taken every `stride`)
predict the token after them, shuffled per epoch. Prefix objective: every prefix of length >= 2 of each
line; the last token is the target, the rest is right-padded with `lengths` so the model masks padding.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from rnnlab.errors import DataError


@dataclass
class Batch:
    """inputs [B, T]; targets [B, T] (sequence) or [B] (window, prefixes); lengths [B] for padded rows."""

    inputs: torch.Tensor
    targets: torch.Tensor
    lengths: torch.Tensor | None = None
    carries_state: bool = False


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    gen = torch.Generator()
    gen.manual_seed(seed * 1_000_003 + epoch)
    return gen


def shard(ids: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Contiguous 1/world_size of a token stream for one data-parallel rank."""
    if world_size <= 1:
        return ids
    size = ids.numel() // world_size
    return ids[rank * size:(rank + 1) * size]


class SequenceBatches:
    """Truncated-BPTT batches over one token stream (see the module docstring)."""

    def __init__(self, ids: torch.Tensor, batch_size: int, seq_len: int, seed: int = 0,
                 shuffle_offset: bool = True):
        self.ids = ids.long()
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.seed = seed
        self.shuffle_offset = shuffle_offset
        self.row_len = (self.ids.numel() - seq_len) // batch_size
        if self.row_len // seq_len < (2 if shuffle_offset else 1):  # the random offset costs a segment per row
            need = (2 * batch_size + 1) * seq_len if shuffle_offset else (batch_size + 1) * seq_len
            raise DataError(
                f"the training text is too short: {self.ids.numel()} tokens, and --batch-size "
                f"{batch_size} x --seq-len {seq_len} needs at least {need}; use a longer corpus "
                f"or smaller --batch-size/--seq-len")

    def __len__(self) -> int:
        return self.row_len // self.seq_len - 1 if self.shuffle_offset else self.row_len // self.seq_len

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        offset = 0
        if self.shuffle_offset:
            offset = int(torch.randint(0, self.seq_len, (1,), generator=epoch_generator(self.seed, epoch)))
        usable = self.row_len * self.batch_size
        rows = self.ids[offset:offset + usable + 1]
        inputs = rows[:-1].view(self.batch_size, self.row_len)
        targets = rows[1:].view(self.batch_size, self.row_len)
        T = self.seq_len
        for step in range(start_step, len(self)):
            lo = step * T
            yield Batch(inputs[:, lo:lo + T], targets[:, lo:lo + T], carries_state=True)


class WindowBatches:
    """Many-to-one windows: `window` tokens predict the next one; windows built on the fly, not stored."""

    def __init__(self, ids: torch.Tensor, batch_size: int, window: int, stride: int = 1, seed: int = 0):
        self.ids = ids.long()
        self.batch_size = batch_size
        self.window = window
        self.seed = seed
        self.starts = torch.arange(0, self.ids.numel() - window, stride)
        if self.starts.numel() < 1:
            raise DataError(f"the training text is too short: {self.ids.numel()} tokens cannot make one "
                            f"window of --window {window} plus a target")
        self._offsets = torch.arange(window)

    def __len__(self) -> int:
        return -(-self.starts.numel() // self.batch_size)

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        order = self.starts[torch.randperm(self.starts.numel(), generator=epoch_generator(self.seed, epoch))]
        for step in range(start_step, len(self)):
            starts = order[step * self.batch_size:(step + 1) * self.batch_size]
            index = starts[:, None] + self._offsets  # [B, window]
            yield Batch(self.ids[index], self.ids[starts + self.window])


def line_prefixes(lines: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every prefix (length >= 2) of every line -> (inputs right-padded with 0 [N, L], lengths [N], targets [N]).

    The tutorials pre-pad and let Keras mask; right padding with explicit lengths is the same computation
    for a masked recurrent layer and lets the model read the last real position directly.
    """
    samples = [(line[:k - 1], line[k - 1]) for line in lines for k in range(2, len(line) + 1)]
    if not samples:
        raise DataError("no line has two tokens or more, so the prefix objective has nothing to learn")
    longest = max(len(inp) for inp, _ in samples)
    inputs = torch.zeros(len(samples), longest, dtype=torch.long)
    for row, (inp, _) in enumerate(samples):
        inputs[row, :len(inp)] = torch.tensor(inp, dtype=torch.long)
    lengths = torch.tensor([len(inp) for inp, _ in samples], dtype=torch.long)
    targets = torch.tensor([t for _, t in samples], dtype=torch.long)
    return inputs, lengths, targets


class PrefixBatches:
    def __init__(self, lines: Sequence[Sequence[int]], batch_size: int, seed: int = 0):
        self.inputs, self.lengths, self.targets = line_prefixes(lines)
        self.batch_size = batch_size
        self.seed = seed

    def __len__(self) -> int:
        return -(-self.targets.numel() // self.batch_size)

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        order = torch.randperm(self.targets.numel(), generator=epoch_generator(self.seed, epoch))
        for step in range(start_step, len(self)):
            rows = order[step * self.batch_size:(step + 1) * self.batch_size]
            width = int(self.lengths[rows].max())
            yield Batch(self.inputs[rows, :width], self.targets[rows], self.lengths[rows])
