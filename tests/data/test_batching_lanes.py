"""Batches and evaluation straight from a token store's array (numpy / read-only memmap, uint8..uint32),
never converted whole; and the data-parallel lane layout: N ranks of batch B see what one process with
batch N x B sees."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnlab.config import ModelConfig
from rnnlab.data import batching
from rnnlab.data.batching import PrefixBatches, SequenceBatches, WindowBatches, lanes_view
from rnnlab.errors import DataError
from rnnlab.models.rnn_lm import RNNLanguageModel
from rnnlab.training import metrics
from rnnlab.training.metrics import evaluate_ids

ROOT = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")


def stream(n: int = 3000, vocab: int = 300, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, vocab, (n,), generator=torch.Generator().manual_seed(seed))


def read_only_memmap(tmp_path: Path, ids: torch.Tensor, dtype) -> np.memmap:
    """`ids` as the token store serves them: a flat file of `dtype`, mapped read-only."""
    path = tmp_path / f"tokens.{np.dtype(dtype).name}"
    ids.numpy().astype(dtype).tofile(path)
    return np.memmap(path, dtype=dtype, mode="r")


def batches_of(batches, epoch: int, start_step: int = 0) -> list[batching.Batch]:
    return list(batches.epoch(epoch, start_step))


def assert_same_batches(a: list[batching.Batch], b: list[batching.Batch]) -> None:
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        assert y.inputs.dtype == y.targets.dtype == torch.long
        assert torch.equal(x.inputs, y.inputs) and torch.equal(x.targets, y.targets)
        assert x.carries_state == y.carries_state


# --------------------------------------------------------------------------- tensor == numpy stream

@pytest.mark.parametrize("dtype", [np.uint16, np.uint8, np.uint32])
def test_a_numpy_or_memmap_stream_gives_the_tensors_batches(tmp_path, dtype):
    ids = stream(vocab=250)  # fits uint8 too
    for array in (ids.numpy().astype(dtype), read_only_memmap(tmp_path, ids, dtype)):
        for epoch, start in ((0, 0), (1, 0), (2, 5)):
            assert_same_batches(batches_of(SequenceBatches(ids, 4, 16, seed=3), epoch, start),
                                batches_of(SequenceBatches(array, 4, 16, seed=3), epoch, start))
            assert_same_batches(batches_of(WindowBatches(ids, 8, 10, stride=3, seed=3), epoch, start),
                                batches_of(WindowBatches(array, 8, 10, stride=3, seed=3), epoch, start))


def test_the_stream_is_kept_as_given_and_lanes_are_views(tmp_path):
    ids = stream()
    mm = read_only_memmap(tmp_path, ids, np.uint16)
    batches = SequenceBatches(mm, 4, 16)
    assert batches.ids is mm  # not converted, not copied
    view = lanes_view(mm, 7, 4, 100)
    assert view.shape == (4, 100) and np.shares_memory(view, mm)
    tensor_view = lanes_view(ids, 7, 4, 100)
    assert tensor_view.untyped_storage().data_ptr() == ids.untyped_storage().data_ptr()
    assert torch.equal(tensor_view[1], ids[107:207])


def test_evaluation_of_a_uint16_memmap_equals_the_tensors_and_converts_only_batches(tmp_path, monkeypatch):
    torch.manual_seed(0)
    ids = stream(n=4000, vocab=40)
    mm = read_only_memmap(tmp_path, ids, np.uint16)
    seq = RNNLanguageModel(ModelConfig(vocab_size=40, hidden_size=16, embedding_size=8, layers=1, dropout=0.0))
    win = RNNLanguageModel(ModelConfig(vocab_size=40, hidden_size=16, embedding_size=8, layers=1, dropout=0.0,
                                       output="last", context=12))
    converted = []  # the size of every piece of the stream turned into a tensor
    as_ids, gather = metrics.as_ids, metrics.gather
    monkeypatch.setattr(metrics, "as_ids", lambda piece: converted.append(piece.size) or as_ids(piece))
    monkeypatch.setattr(metrics, "gather", lambda s, index: converted.append(index.numel()) or gather(s, index))
    sequence = evaluate_ids(seq, mm, 1.0, CPU, batch_size=3, seq_len=64)
    assert 0 < max(converted) <= 3 * 256 and sequence["tokens"] == 3999  # every token, a batch at a time
    converted.clear()
    windows = evaluate_ids(win, mm, 1.0, CPU, batch_size=2, window=12)
    assert 0 < max(converted) <= 2 * 16 * 12
    monkeypatch.undo()
    assert sequence == evaluate_ids(seq, ids, 1.0, CPU, batch_size=3, seq_len=64)
    assert windows == evaluate_ids(win, ids, 1.0, CPU, batch_size=2, window=12)


# A child process whose private memory may grow by 256 MB at most (RLIMIT_DATA: heap and anonymous maps,
# not the read-only file map): a 300M-token memmap converted whole (2.4 GB as int64) cannot fit.
BIG_STREAM = textwrap.dedent('''
    import resource, sys
    import numpy as np
    from rnnlab.data.batching import SequenceBatches, WindowBatches
    path, n = sys.argv[1], int(sys.argv[2])
    with open(path, "wb") as f:
        f.truncate(n)  # sparse: n uint8 tokens (zeros) that take no disk
    tokens = np.memmap(path, dtype=np.uint8, mode="r")
    with open("/proc/self/status") as f:
        used = next(int(x.split()[1]) for x in f if x.startswith("VmData:")) * 1024
    resource.setrlimit(resource.RLIMIT_DATA, (used + (256 << 20), resource.RLIM_INFINITY))
    seq = SequenceBatches(tokens, 4, 64)
    first, last = next(seq.epoch(0)), next(seq.epoch(1, len(seq) - 1))
    assert first.inputs.shape == last.targets.shape == (4, 64)
    win = WindowBatches(tokens, 4, 64, stride=10_000)
    assert next(win.epoch(0)).inputs.shape == (4, 64)
    print("ok", len(seq))
''')


def test_a_stream_bigger_than_the_memory_allowed_is_batched_without_converting_it(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", BIG_STREAM, str(tmp_path / "big.bin"), str(300_000_000)],
                            capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["ok", str((300_000_000 - 64) // 4 // 64 - 1)]


# ------------------------------------------------------------------------------- data-parallel lanes

@pytest.mark.parametrize(("world", "B", "shuffle_offset"), [(2, 3, True), (3, 2, True), (2, 4, False)])
def test_rank_r_reads_lanes_rB_to_r1B_of_the_one_process_with_batch_NB(world, B, shuffle_offset):
    ids = stream(n=2000)
    one = SequenceBatches(ids, world * B, 8, seed=5, shuffle_offset=shuffle_offset)
    ranks = [SequenceBatches(ids, B, 8, seed=5, shuffle_offset=shuffle_offset, rank=r, world_size=world)
             for r in range(world)]
    assert all(len(rank) == len(one) and rank.row_len == one.row_len for rank in ranks)
    for epoch in range(3):  # a fresh offset each epoch, the same on every rank
        single = batches_of(one, epoch)
        for r, rank in enumerate(ranks):
            lanes = slice(r * B, (r + 1) * B)
            assert_same_batches([batching.Batch(b.inputs[lanes], b.targets[lanes], carries_state=True)
                                 for b in single], batches_of(rank, epoch))
    # A resumed rank continues with its own lanes.
    assert_same_batches(batches_of(ranks[1], 1)[4:], batches_of(ranks[1], 1, start_step=4))


@pytest.mark.parametrize(("world", "B", "stride"), [(2, 4, 1), (3, 5, 2), (2, 7, 3)])
def test_rank_r_takes_the_rth_slice_of_each_global_window_batch(world, B, stride):
    ids = stream(n=500)
    one = WindowBatches(ids, world * B, 6, stride=stride, seed=1)
    ranks = [WindowBatches(ids, B, 6, stride=stride, seed=1, rank=r, world_size=world) for r in range(world)]
    full_steps = one.count // (world * B)
    assert one.count % (world * B)  # these sizes leave a short last global batch: dropped under DDP
    assert all(len(rank) == full_steps == len(one) - 1 for rank in ranks)
    for epoch in range(2):
        single = batches_of(one, epoch)
        for r, rank in enumerate(ranks):
            lanes = slice(r * B, (r + 1) * B)
            mine = batches_of(rank, epoch)
            assert all(b.inputs.shape[0] == B for b in mine)  # never an empty or short batch
            assert_same_batches([batching.Batch(b.inputs[lanes], b.targets[lanes]) for b in single[:full_steps]],
                                mine)


def test_rank_r_takes_the_rth_slice_of_each_global_prefix_batch_padded_as_the_one_process():
    lines = [list(range(1, 2 + (7 * i) % 11)) for i in range(30)]
    one = PrefixBatches(lines, 6, seed=2)
    ranks = [PrefixBatches(lines, 3, seed=2, rank=r, world_size=2) for r in range(2)]
    assert all(len(rank) == one.targets.numel() // 6 for rank in ranks)
    for step, single in enumerate(batches_of(one, 1)[:len(ranks[0])]):
        for r, rank in enumerate(ranks):
            mine = batches_of(rank, 1)[step]
            rows = slice(3 * r, 3 * r + 3)
            assert torch.equal(mine.inputs, single.inputs[rows]) and torch.equal(mine.lengths, single.lengths[rows])
            assert torch.equal(mine.targets, single.targets[rows])


def test_too_short_for_every_rank_names_the_ranks():
    with pytest.raises(DataError, match=r"--batch-size 4 x 2 ranks"):
        SequenceBatches(torch.arange(100), 4, 8, rank=0, world_size=2)
    with pytest.raises(DataError, match=r"do not fill one batch of --batch-size 4 x 2 ranks"):
        WindowBatches(torch.arange(12), 4, 5, rank=1, world_size=2)
    with pytest.raises(ValueError, match="rank 2"):
        SequenceBatches(torch.arange(1000), 4, 8, rank=2, world_size=2)
