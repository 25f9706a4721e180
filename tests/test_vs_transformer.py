"""benchmarks/vs_transformer.py: the GPT is causal, the full-context scorer scores each character once and
agrees with a plain per-position computation, and --option values convert to their field's type."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark():
    path = ROOT / "benchmarks" / "vs_transformer.py"
    spec = importlib.util.spec_from_file_location("vs_transformer_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the module's dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def tiny_gpt(bench, block=8):
    torch.manual_seed(0)
    return bench.GPT(bench.GPTConfig(vocab_size=11, block_size=block, n_layer=2, n_head=2, n_embd=16)).eval()


@pytest.mark.parametrize("n", [2, 5, 8, 9, 10, 13, 40, 41])
def test_every_target_is_scored_once_with_bounded_context(n):
    bench = load_benchmark()
    scored = []
    for start, end, n_scored in bench.full_context_windows(n, block=8, stride=4):
        assert 0 <= start < end <= n - 1 and end - start <= 8 and 0 < n_scored <= end - start
        targets = list(range(start + 1, end + 1))[-n_scored:]
        assert start == 0 or all(t - 1 - start >= 4 for t in targets)  # at least block - stride context
        scored += targets
    assert scored == list(range(1, n))


def test_scorer_matches_a_per_position_computation_on_a_short_text(one_thread):
    bench = load_benchmark()
    model = tiny_gpt(bench)
    ids = torch.tensor([3, 1, 4, 1, 5, 9, 2])  # shorter than one window
    result = bench.score_full_context(model, ids, stride=4)
    assert result["count"] == len(ids) - 1
    with torch.no_grad():
        expected = sum(-F.log_softmax(model(ids[None, :t])[0, -1], -1)[ids[t]].item()
                       for t in range(1, len(ids)))
    assert result["bpc"] == pytest.approx(expected / (len(ids) - 1) / math.log(2), rel=1e-5)


def test_scorer_on_a_longer_text_matches_the_window_by_window_sum(one_thread):
    bench = load_benchmark()
    model = tiny_gpt(bench)
    ids = torch.randint(0, 11, (37,), generator=torch.Generator().manual_seed(1))
    result = bench.score_full_context(model, ids, stride=4, batch_size=3)
    total = 0.0
    with torch.no_grad():
        for start, end, n_scored in bench.full_context_windows(len(ids), 8, 4):
            logp = F.log_softmax(model(ids[None, start:end])[0], -1)
            for t in range(end + 1 - n_scored, end + 1):  # target position t, predicted from ids[start:t]
                total -= logp[t - 1 - start, ids[t]].item()
    assert result["count"] == 36
    assert result["bpc"] == pytest.approx(total / 36 / math.log(2), rel=1e-5)


def test_the_model_is_causal(one_thread):
    bench = load_benchmark()
    model = tiny_gpt(bench)
    ids = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]])
    changed = ids.clone()
    changed[0, 5] = 10
    with torch.no_grad():
        a, b = model(ids), model(changed)
    assert torch.allclose(a[0, :5], b[0, :5], atol=1e-6)
    assert not torch.allclose(a[0, 5:], b[0, 5:])


def test_the_embedding_and_output_weights_are_tied():
    bench = load_benchmark()
    model = tiny_gpt(bench)
    assert model.lm_head.weight is model.wte.weight
    assert model.num_parameters() == sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def test_options_convert_to_their_field_types():
    bench = load_benchmark()
    assert bench.parse_option("tie_weights=false") == ("tie_weights", False)
    assert bench.parse_option("tie_weights=1") == ("tie_weights", True)
    assert bench.parse_option("hidden_size=256") == ("hidden_size", 256)
    assert bench.parse_option("lr=0.002") == ("lr", 0.002)
    assert bench.parse_option("patience=none") == ("patience", None)
    assert bench.parse_option("patience=5") == ("patience", 5)
    assert bench.parse_option("cell=gru") == ("cell", "gru")
    with pytest.raises(ValueError):
        bench.parse_option("tie_weights=maybe")
