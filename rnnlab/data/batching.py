"""Token streams to training batches, for each objective, resumable at any step, laid out by rank.

A stream is a 1-D integer array: a torch tensor, or a numpy array / read-only `np.memmap` of uint8, uint16
or uint32 (the token store's). It is never converted or copied whole: lanes are views into it, and only
each step's batch ([B, T] or [B, window]) is turned into int64 tensors (`as_ids`, `gather`), so memory
does not grow with the corpus.

Sequence objective (truncated BPTT, as in char-rnn and PyTorch's word_language_model). The stream is cut
into B equal rows (lanes) that are read side by side, T tokens at a time; row b's state carries from one
step to the next because step i+1 continues exactly where step i stopped:

    stream  a b c d e f g h i j k l m n o p q r s t u v w x        B = 3, T = 3
    rows    a b c d e f g h | i j k l m n o p | q r s t u v w x
    step 0  inputs [a b c]  [i j k]  [q r s]   targets [b c d] [j k l] [r s t]
    step 1  inputs [d e f]  [l m n]  [t u v]   targets [e f g] [m n o] [u v w]

Each epoch starts the rows at a fresh offset in [0, T) drawn from (seed, epoch), so the cut points
between segments move from epoch to epoch; the draw depends on nothing else, which keeps resume exact.

Window objective (the Keras tutorials' many-to-one): every `window` tokens (taken every `stride`)
predict the token after them, shuffled per epoch. Prefix objective: every prefix of length >= 2 of each
line; the last token is the target, the rest is right-padded with `lengths` so the model masks padding.

Data parallel (N ranks, --batch-size B each): every rank lays out the batches of ONE process with batch
N x B and takes its own B of them, so N ranks together see exactly what that one process sees:

    sequence   N x B lanes, the same row_len, offset and number of steps; rank r reads lanes
               r*B .. (r+1)*B - 1                     (N = 2, B = 2:  lanes 0 1 | 2 3 -> rank 0 | rank 1)
    window,    the same shuffled order cut into global batches of N x B; rank r takes the r-th B-slice
    prefixes   of each; an incomplete last global batch is dropped (see `_global_steps`)

With equal per-rank batches, DDP's mean of the ranks' mean gradients is the one process's mean gradient.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rnnlab.errors import DataError

Stream = torch.Tensor | np.ndarray  # 1-D token ids; np.memmap is an np.ndarray


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


# ------------------------------------------------------------------------------------------- streams

def stream_length(ids: Stream) -> int:
    """The number of tokens of a 1-D stream (a tensor or a numpy array), checking that it is one."""
    if ids.ndim != 1:
        raise ValueError(f"a token stream is 1-D (got shape {tuple(ids.shape)})")
    return int(ids.shape[0])


def as_ids(piece: Stream) -> torch.Tensor:
    """A small piece of a stream (a slice or view) as an int64 tensor: the only place numbers are converted.

    numpy pieces are copied (np.array), which also keeps torch off the read-only memory of a memmap;
    an int64 tensor is returned as it is (a view, as before streams could be numpy).
    """
    if isinstance(piece, torch.Tensor):
        return piece.long()
    return torch.from_numpy(np.array(piece, dtype=np.int64))


def lanes_view(ids: Stream, start: int, rows: int, row_len: int) -> Stream:
    """ids[start : start + rows * row_len] as [rows, row_len], a view (no copy) for tensors and arrays."""
    return ids[start:start + rows * row_len].reshape(rows, row_len)


def gather(ids: Stream, index: torch.Tensor) -> torch.Tensor:
    """ids[index] for an integer index tensor of any shape, as int64; reads only those positions."""
    if isinstance(ids, torch.Tensor):
        return ids[index].long()
    return as_ids(ids[index.numpy()])


def _global_steps(items: int, batch_size: int, world_size: int) -> int:
    """Steps per epoch over `items` shuffled items for N ranks of `batch_size` (global batch N x B).

    One process keeps a short last batch. Under DDP a short last global batch would give some rank fewer
    rows than the others (or none at all, which DDP cannot average), so it is dropped: then an epoch is
    one step shorter than the single process's with batch N x B whenever N x B does not divide `items`.
    """
    global_batch = batch_size * world_size
    return -(-items // global_batch) if world_size == 1 else items // global_batch


def _check_rank(rank: int, world_size: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not one of world_size {world_size} ranks")


def _batch_flag(batch_size: int, world_size: int) -> str:
    return f"--batch-size {batch_size}" + (f" x {world_size} ranks" if world_size > 1 else "")


# ------------------------------------------------------------------------------------------- batches

class SequenceBatches:
    """Truncated-BPTT batches over one token stream (see the module docstring); this rank's lanes only."""

    def __init__(self, ids: Stream, batch_size: int, seq_len: int, seed: int = 0,
                 shuffle_offset: bool = True, rank: int = 0, world_size: int = 1):
        _check_rank(rank, world_size)
        self.ids = ids  # kept as given: lanes are views of it
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.seed = seed
        self.shuffle_offset = shuffle_offset
        self.lanes = batch_size * world_size  # the lanes of the one process these ranks add up to
        self.first_lane = rank * batch_size
        n = stream_length(ids)
        self.row_len = (n - seq_len) // self.lanes
        if self.row_len // seq_len < (2 if shuffle_offset else 1):  # the random offset costs a segment per row
            need = (2 * self.lanes + 1) * seq_len if shuffle_offset else (self.lanes + 1) * seq_len
            raise DataError(
                f"the training text is too short: {n} tokens, and {_batch_flag(batch_size, world_size)} "
                f"x --seq-len {seq_len} needs at least {need}; use a longer corpus "
                f"or smaller --batch-size/--seq-len")

    def __len__(self) -> int:
        return self.row_len // self.seq_len - 1 if self.shuffle_offset else self.row_len // self.seq_len

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        offset = 0
        if self.shuffle_offset:
            offset = int(torch.randint(0, self.seq_len, (1,), generator=epoch_generator(self.seed, epoch)))
        start = offset + self.first_lane * self.row_len
        inputs = lanes_view(self.ids, start, self.batch_size, self.row_len)  # [B, row_len], views
        targets = lanes_view(self.ids, start + 1, self.batch_size, self.row_len)
        T = self.seq_len
        for step in range(start_step, len(self)):
            lo = step * T
            yield Batch(as_ids(inputs[:, lo:lo + T]), as_ids(targets[:, lo:lo + T]), carries_state=True)


class WindowBatches:
    """Many-to-one windows: `window` tokens predict the next one; windows built on the fly, not stored.

    Memory: no window and no start index is stored; each epoch holds one shuffled permutation of the
    window numbers, 8 bytes per window (torch.randperm's int64: 800 MB for 10^8 windows at --stride 1).
    """

    def __init__(self, ids: Stream, batch_size: int, window: int, stride: int = 1, seed: int = 0,
                 rank: int = 0, world_size: int = 1):
        _check_rank(rank, world_size)
        self.ids = ids
        self.batch_size = batch_size
        self.window = window
        self.stride = stride
        self.seed = seed
        self.world_size = world_size
        self.first = rank * batch_size  # this rank's slice of each global batch
        n = stream_length(ids)
        self.count = len(range(0, n - window, stride))  # windows start at 0, stride, 2 stride, ...
        if self.count < 1:
            raise DataError(f"the training text is too short: {n} tokens cannot make one "
                            f"window of --window {window} plus a target")
        if len(self) < 1:
            raise DataError(f"the training text is too short: its {self.count} windows do not fill one batch "
                            f"of {_batch_flag(batch_size, world_size)}; use a longer corpus or a smaller "
                            f"--batch-size")
        self._offsets = torch.arange(window)

    def __len__(self) -> int:
        return _global_steps(self.count, self.batch_size, self.world_size)

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        order = torch.randperm(self.count, generator=epoch_generator(self.seed, epoch))
        global_batch = self.batch_size * self.world_size
        for step in range(start_step, len(self)):
            lo = step * global_batch + self.first
            starts = order[lo:lo + self.batch_size] * self.stride  # window k starts at k * stride
            index = starts[:, None] + self._offsets  # [B, window]
            yield Batch(gather(self.ids, index), gather(self.ids, starts + self.window))


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
    def __init__(self, lines: Sequence[Sequence[int]], batch_size: int, seed: int = 0, rank: int = 0,
                 world_size: int = 1):
        _check_rank(rank, world_size)
        self.inputs, self.lengths, self.targets = line_prefixes(lines)
        self.batch_size = batch_size
        self.seed = seed
        self.world_size = world_size
        self.first = rank * batch_size
        if len(self) < 1:
            raise DataError(f"the training text is too short: its {self.targets.numel()} prefixes do not fill "
                            f"one batch of {_batch_flag(batch_size, world_size)}; use a longer corpus or a "
                            f"smaller --batch-size")

    def __len__(self) -> int:
        return _global_steps(self.targets.numel(), self.batch_size, self.world_size)

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        order = torch.randperm(self.targets.numel(), generator=epoch_generator(self.seed, epoch))
        global_batch = self.batch_size * self.world_size
        for step in range(start_step, len(self)):
            everyone = order[step * global_batch:(step + 1) * global_batch]
            rows = everyone[self.first:self.first + self.batch_size]
            # Padded to the global batch's longest, so a rank's rows equal the one process's rows.
            width = int(self.lengths[everyone].max())
            yield Batch(self.inputs[rows, :width], self.targets[rows], self.lengths[rows])
