"""The tutorials' training objectives as batches (window, prefixes), padding masking, and the helpers of
benchmarks/objectives.py (splits, time to reach a bits-per-character target)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

from rnnlab.config import ModelConfig
from rnnlab.data.batching import PrefixBatches, WindowBatches, line_prefixes
from rnnlab.data.corpus import read_corpus
from rnnlab.models.rnn_lm import RNNLanguageModel

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("objectives_benchmark", ROOT / "benchmarks" / "objectives.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------------- window

def test_window_batches_are_every_strided_window_with_the_token_after_it():
    ids = torch.arange(100, 120)  # 20 tokens: the value says where a token came from
    batches = WindowBatches(ids, batch_size=4, window=4, stride=3, seed=0)
    seen = []
    for batch in batches.epoch(0):
        assert batch.inputs.shape[1] == 4 and batch.targets.shape == (batch.inputs.shape[0],)
        for row, target in zip(batch.inputs.tolist(), batch.targets.tolist()):
            start = row[0] - 100
            assert row == list(range(100 + start, 104 + start)) and target == 104 + start
            seen.append(start)
    # Starts 0, 3, ..., 15: the last window (15..18) predicts token 19, the stream's last.
    assert sorted(seen) == [0, 3, 6, 9, 12, 15] and len(batches) == math.ceil(6 / 4)
    # Shuffled per epoch, the same set each time.
    again = [b.inputs[:, 0].tolist() for b in batches.epoch(1)]
    order = [x - 100 for xs in again for x in xs]
    assert sorted(order) == sorted(seen) and order != seen


# --------------------------------------------------------------------------------------- prefixes

def test_line_prefixes_are_every_prefix_of_two_or_more_tokens():
    inputs, lengths, targets = line_prefixes([[5, 6, 7, 8], [9], [3, 4]])
    # Line 1 gives 5->6, 5 6->7, 5 6 7->8; a one-token line gives nothing; line 3 gives 3->4.
    assert targets.tolist() == [6, 7, 8, 4]
    assert lengths.tolist() == [1, 2, 3, 1]
    assert inputs.tolist() == [[5, 0, 0], [5, 6, 0], [5, 6, 7], [3, 0, 0]]
    batches = PrefixBatches([[5, 6, 7, 8], [9], [3, 4]], batch_size=3)
    rows = [(b.inputs.shape[1], int(b.lengths.max())) for b in batches.epoch(0)]
    assert all(width == longest for width, longest in rows)  # each batch padded to its own longest


@pytest.mark.parametrize("impl", ["fused", "reference"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_is_masked_out_of_every_prediction(impl, bidirectional):
    torch.manual_seed(0)
    model = RNNLanguageModel(ModelConfig(vocab_size=10, cell="gru" if bidirectional else "lstm", layers=2,
                                         hidden_size=6, embedding_size=5, dropout=0.0, output="last",
                                         bidirectional=bidirectional, cell_impl=impl)).eval()
    inputs, lengths, _ = line_prefixes([[3, 4, 5, 6, 7], [2, 7], [1, 2, 3]])
    with torch.no_grad():
        padded, _ = model(inputs, None, lengths)
        alone = torch.cat([model(inputs[i:i + 1, :n], None, lengths[i:i + 1])[0]
                           for i, n in enumerate(lengths.tolist())])
        # Different padding values must not change anything either.
        noisy = inputs.clone()
        noisy[torch.arange(noisy.shape[1])[None, :] >= lengths[:, None]] = 9
        refilled, _ = model(noisy, None, lengths)
    torch.testing.assert_close(padded, alone, rtol=0, atol=1e-6)
    torch.testing.assert_close(refilled, alone, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- the benchmark's pieces

def test_benchmark_splits_validate_on_the_end_of_the_training_share(shared_data):
    bench = load_benchmark()
    text = read_corpus(shared_data / "jungle-book.txt")
    assert len(text) == 273_055  # the README's cleaned length
    train, valid, test = bench.carve_splits(text, 5_000)
    assert len(test) == 27_306 and text.endswith(test)  # the README's test split, untouched
    assert len(valid) == 5_000 and train + valid + test == text
    with pytest.raises(ValueError, match="--valid-chars"):
        bench.carve_splits(text, 0)


def test_benchmark_time_to_reach_and_training_seconds():
    bench = load_benchmark()
    records = [{"seconds": 3.0, "val_bpc": 5.0}, {"seconds": 8.0, "val_bpc": 3.2},
               {"seconds": 12.0, "val_bpc": 2.9}, {"seconds": 20.0, "val_bpc": 3.1}]
    assert bench.time_to_reach(records, 3.2) == 8.0
    assert bench.time_to_reach(records, 3.0) == 12.0
    assert bench.time_to_reach(records, 2.5) is None
    # Each record's seconds include its own evaluation and every earlier one.
    assert bench.training_seconds(records, [1.0, 1.0, 0.5, 2.0]) == [2.0, 6.0, 9.5, 15.5]
    with pytest.raises(ValueError):
        bench.training_seconds(records, [1.0])
    assert bench.WINDOW_SETUP["window"] == 50 and bench.WINDOW_SETUP["input"] == "onehot"
    assert bench.WINDOW_SETUP["batch_size"] == 128 and bench.WINDOW_SETUP["hidden_size"] == 128
    assert bench.SEQUENCE_SETUP == {"objective": "sequence", "cell": "lstm", "layers": 1, "hidden_size": 128}
    assert bench.parse_options(["warmup_steps=0", "lr=5e-3", "cell=gru"]) == \
        {"warmup_steps": 0, "lr": 0.005, "cell": "gru"}


# ------------------------------------------------------------------------- objectives as objects

def test_each_objective_says_its_output_its_context_and_its_data():
    from rnnlab.config import TrainConfig
    from rnnlab.data.tokenizers import CharTokenizer
    from rnnlab.training.objectives import OBJECTIVES, objective_of

    tok = CharTokenizer.train("ab\nba\n")
    train = TrainConfig(objective="window", window=3)
    assert set(OBJECTIVES) == {"sequence", "window", "prefixes"}
    assert [(o.output, o.context(train)) for o in OBJECTIVES.values()] == [("sequence", None), ("last", 3),
                                                                          ("last", None)]
    stream, n = objective_of("sequence").encode(tok, "ab\nba")
    assert n == 5 and stream.tolist() == tok.start_ids() + tok.encode("ab\nba")  # read from the start context
    window, n = objective_of("window").encode(tok, "ab\nba")
    assert n == 5 and window.tolist() == tok.encode("ab\nba")
    lines, n = objective_of("prefixes").encode(tok, "ab\n\nba\n")
    assert n == 4 and lines == [tok.encode("ab"), tok.encode("ba")]


def test_the_context_width_is_the_models_and_old_window_models_load_with_theirs(tmp_path, small_corpus):
    import json

    import rnnlab
    from rnnlab.cli import main

    out = tmp_path / "w"
    assert main(["train", str(small_corpus), "-o", str(out), "--objective", "window", "--window", "6",
                 "--layers", "1", "--hidden", "16", "--embedding", "8", "--batch-size", "16", "--max-steps", "2",
                 "--eval-every", "2", "--no-progress", "--sample-every", "0"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["context"] == 6
    lm = rnnlab.load(out)
    before = lm.predict_next("Mowgli and the wolves", k=3)
    del config["model"]["context"]  # as written before the width moved into the model's config
    (out / "config.json").write_text(json.dumps(config))
    old = rnnlab.load(out)
    assert old.model.config.context == 6 and old.predict_next("Mowgli and the wolves", k=3) == before
