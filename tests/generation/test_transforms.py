"""The sampling transforms against distributions worked out by hand."""

import math

import pytest
import torch

from rnnlab.config import SampleConfig
from rnnlab.errors import ConfigError
from rnnlab.generation.transforms import (
    Temperature,
    TopK,
    TopP,
    UniformTopK,
    build_chain,
    is_greedy,
    next_token,
)

INF = math.inf
P4 = [0.5, 0.3, 0.15, 0.05]


def _logits(*rows):
    """Logits whose softmax is each given row of probabilities."""
    return torch.tensor(rows, dtype=torch.float32).log()


def _probs(logits):
    return logits.softmax(dim=-1)


def _apply(chain, logits):
    for transform in chain:
        logits = transform(logits)
    return logits


def test_top_p_keeps_the_smallest_nucleus_reaching_p():
    # 0.5 < 0.8, 0.5 + 0.3 = 0.8 reaches it: the first two, renormalised 0.5/0.8 and 0.3/0.8
    out = TopP(0.8)(_logits(P4))
    torch.testing.assert_close(_probs(out), torch.tensor([[0.625, 0.375, 0.0, 0.0]]), atol=1e-6, rtol=0)
    assert out[0, 2].item() == out[0, 3].item() == -INF
    # kept tokens keep their logits
    torch.testing.assert_close(out[0, :2], torch.tensor([0.5, 0.3]).log())


def test_top_p_exact_boundary_does_not_depend_on_float_rounding():
    # 0.45 + 0.35 = 0.8 exactly on paper, but 0.79999995 in float32: still the first two, 0.45/0.8, 0.35/0.8
    probs = _probs(TopP(0.8)(_logits([0.45, 0.35, 0.2])))
    torch.testing.assert_close(probs, torch.tensor([[0.5625, 0.4375, 0.0]]), atol=1e-6, rtol=0)


def test_top_p_of_the_top_probability_keeps_one_token():
    assert _probs(TopP(0.5)(_logits(P4))).tolist() == [[1.0, 0.0, 0.0, 0.0]]
    # a p below the top probability still keeps that one token
    assert _probs(TopP(0.01)(_logits(P4))).tolist() == [[1.0, 0.0, 0.0, 0.0]]


def test_top_p_just_above_a_boundary_takes_the_next_token_too():
    # 0.5 + 0.3 = 0.8 < 0.81: the third token joins; 0.5/0.95, 0.3/0.95, 0.15/0.95
    probs = _probs(TopP(0.81)(_logits(P4)))
    torch.testing.assert_close(probs, torch.tensor([[0.526316, 0.315789, 0.157895, 0.0]]), atol=1e-6, rtol=0)


def test_top_p_works_row_by_row_over_a_batch():
    # row 2 sorted is 0.7, 0.2, 0.1: 0.7 < 0.8, 0.9 >= 0.8 -> tokens 1 and 2, i.e. 7/9 and 2/9
    probs = _probs(TopP(0.8)(_logits([0.5, 0.3, 0.15, 0.05], [0.1, 0.7, 0.2, 1e-9])))
    expected = torch.tensor([[0.625, 0.375, 0.0, 0.0], [0.0, 7 / 9, 2 / 9, 0.0]])
    torch.testing.assert_close(probs, expected, atol=1e-6, rtol=0)


def test_top_p_one_keeps_everything():
    logits = _logits(P4)
    assert torch.equal(TopP(1.0)(logits), logits)


def test_temperature_divides_the_logits():
    # logits ln 1, ln 4, ln 9 at temperature 2 -> ln 1, ln 2, ln 3 -> softmax 1/6, 2/6, 3/6
    out = Temperature(2.0)(torch.tensor([[0.0, math.log(4), math.log(9)]]))
    torch.testing.assert_close(_probs(out), torch.tensor([[1 / 6, 2 / 6, 3 / 6]]), atol=1e-6, rtol=0)
    # temperature 0.5 squares the probabilities: 1, 16, 81 over 98
    out = Temperature(0.5)(torch.tensor([[0.0, math.log(4), math.log(9)]]))
    torch.testing.assert_close(_probs(out), torch.tensor([[1 / 98, 16 / 98, 81 / 98]]), atol=1e-6, rtol=0)


def test_top_k_keeps_the_k_largest():
    out = TopK(2)(torch.tensor([[1.0, 3.0, 2.0, 0.5], [4.0, -1.0, 0.0, 5.0]]))
    assert out.tolist() == [[-INF, 3.0, 2.0, -INF], [4.0, -INF, -INF, 5.0]]
    # e^3 / (e^3 + e^2) = e / (e + 1) = 0.731059
    torch.testing.assert_close(_probs(out)[0], torch.tensor([0.0, 0.731059, 0.268941, 0.0]), atol=1e-6, rtol=0)


def test_top_k_keeps_exactly_k_when_logits_tie():
    out = TopK(2)(torch.tensor([[1.0, 1.0, 1.0, 0.0]]))
    assert (out > -INF).sum().item() == 2


def test_top_k_at_or_above_the_vocabulary_size_changes_nothing():
    logits = torch.tensor([[1.0, 3.0, 2.0]])
    for k in (3, 10):
        out = TopK(k)(logits)
        assert torch.equal(out, logits) and out is not logits


def test_uniform_top_k_gives_equal_probabilities_to_the_k_most_likely():
    out = UniformTopK(2)(torch.tensor([[0.2, 5.0, 1.0, 3.0]]))
    assert out.tolist() == [[-INF, 0.0, -INF, 0.0]]
    assert _probs(out).tolist() == [[0.0, 0.5, 0.0, 0.5]]
    assert _probs(UniformTopK(3)(torch.tensor([[0.2, 5.0, 1.0, 3.0]]))).tolist()[0][0] == 0.0
    torch.testing.assert_close(_probs(UniformTopK(9)(_logits(P4))), torch.full((1, 4), 0.25))


def test_chain_order_is_temperature_then_top_k_then_top_p():
    config = SampleConfig(temperature=2.0, top_k=3, top_p=0.8)
    assert build_chain(config) == [Temperature(2.0), TopK(3), TopP(0.8)]


def test_temperature_before_top_p_changes_the_nucleus():
    # Temperature 2 first: probabilities ∝ sqrt(p) = 0.3790, 0.2936, 0.2076, 0.1198; the first two sum to
    # 0.6726 < 0.8, so three survive: sqrt(0.5), sqrt(0.3), sqrt(0.15) over their sum 1.6421.
    chain = build_chain(SampleConfig(temperature=2.0, top_p=0.8))
    probs = _probs(_apply(chain, _logits(P4)))
    torch.testing.assert_close(probs, torch.tensor([[0.430604, 0.333544, 0.235852, 0.0]]), atol=1e-6, rtol=0)
    # The other order would cut at two tokens first: sqrt(0.5), sqrt(0.3) over 1.2548.
    swapped = _probs(_apply(list(reversed(chain)), _logits(P4)))
    torch.testing.assert_close(swapped, torch.tensor([[0.563508, 0.436492, 0.0, 0.0]]), atol=1e-6, rtol=0)


def test_transforms_never_mutate_their_input():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.5], [0.0, -1.0, 2.0, 0.25]])
    before = logits.clone()
    for transform in (Temperature(0.7), TopK(2), TopK(4), TopP(0.6), TopP(1.0), UniformTopK(2), UniformTopK(4)):
        out = transform(logits)
        assert out is not logits
        assert torch.equal(logits, before), transform


def test_neutral_settings_give_an_empty_chain():
    neutral = SampleConfig(temperature=1.0, top_k=0, top_p=1.0)
    assert build_chain(neutral) == [] and not is_greedy(neutral)
    assert build_chain(SampleConfig(temperature=1.0, top_p=0.9)) == [TopP(0.9)]
    assert build_chain(SampleConfig(temperature=0.8)) == [Temperature(0.8)]


def test_greedy_and_creativity_strategies():
    for config in (SampleConfig(strategy="greedy", temperature=0.8, top_k=5),
                   SampleConfig(temperature=0.0, top_p=0.9)):
        assert is_greedy(config) and build_chain(config) == []
    creativity = SampleConfig(strategy="creativity", top_k=3, temperature=0.5, top_p=0.9)
    assert not is_greedy(creativity)
    assert build_chain(creativity) == [UniformTopK(3)]


@pytest.mark.parametrize("make, flag", [
    (lambda: Temperature(-1.0), "--temperature"),
    (lambda: Temperature(0.0), "--temperature"),
    (lambda: Temperature(math.nan), "--temperature"),
    (lambda: TopP(0.0), "--top-p"),
    (lambda: TopP(1.5), "--top-p"),
    (lambda: TopK(-3), "--top-k"),
    (lambda: TopK(0), "--top-k"),
    (lambda: TopK(2.5), "--top-k"),
    (lambda: UniformTopK(0), "--top-k"),
])
def test_transforms_reject_bad_settings_naming_the_flag(make, flag):
    with pytest.raises(ConfigError, match=f"^{flag} "):
        make()


def test_bad_settings_message_is_one_line_with_the_value():
    with pytest.raises(ConfigError) as caught:
        TopP(1.5)
    assert str(caught.value) == "--top-p must be in (0, 1] (got 1.5)"


@pytest.mark.parametrize("settings, flag", [
    ({"temperature": -1.0}, "--temperature"),
    ({"top_p": 0.0}, "--top-p"),
    ({"top_p": 1.5}, "--top-p"),
    ({"top_k": -3}, "--top-k"),
])
def test_sample_config_rejects_the_same_settings(settings, flag):
    with pytest.raises(ConfigError, match=f"^{flag} "):
        SampleConfig(**settings)


def test_greedy_next_token_is_the_argmax_of_each_row():
    logits = torch.tensor([[1.0, 3.0, 2.0], [5.0, -1.0, 0.0]])
    ids = next_token(logits, [TopK(1)], greedy=True, generator=None)
    assert ids.dtype == torch.long and ids.tolist() == [1, 0]


def test_seeded_sampling_is_reproducible():
    logits = torch.randn(8, 50, generator=torch.Generator().manual_seed(0))
    chain = build_chain(SampleConfig(temperature=1.3, top_k=20, top_p=0.95))

    def draw(seed):
        g = torch.Generator().manual_seed(seed)
        return torch.stack([next_token(logits, chain, greedy=False, generator=g) for _ in range(5)])

    first, again = draw(7), draw(7)
    assert first.shape == (5, 8) and first.dtype == torch.long
    assert torch.equal(first, again)
    assert not torch.equal(first, draw(8))


def test_sampled_frequencies_match_the_transformed_probabilities():
    # One batched draw of N rows, all the same distribution.
    n = 40_000
    g = torch.Generator().manual_seed(123)
    logits = _logits(P4).expand(n, 4)
    counts = torch.bincount(next_token(logits, [TopP(0.8)], greedy=False, generator=g), minlength=4)
    # expected 0.625, 0.375, 0, 0; one standard deviation is sqrt(0.625 * 0.375 / n) = 0.0024
    assert counts[2:].tolist() == [0, 0]
    torch.testing.assert_close(counts.float() / n, torch.tensor([0.625, 0.375, 0.0, 0.0]), atol=0.012, rtol=0)

    chain = build_chain(SampleConfig(temperature=2.0, top_p=0.8))
    freqs = torch.bincount(next_token(logits, chain, greedy=False, generator=g), minlength=4).float() / n
    torch.testing.assert_close(freqs, torch.tensor([0.430604, 0.333544, 0.235852, 0.0]), atol=0.012, rtol=0)
