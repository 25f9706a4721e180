"""decode() against the loop it replaced: model() per token and the pure transforms' next_token.

The stepper, the sampler's fused chain and the noise drawn ahead in blocks must not change which
tokens a seed gives, nor (beyond float rounding) their log-probabilities, the final state and logits.
"""

from __future__ import annotations

import pytest
import torch

from rnnlab.config import ModelConfig, SampleConfig
from rnnlab.generation import sampler as sampler_module
from rnnlab.generation.decoder import decode, prime
from rnnlab.generation.transforms import build_chain, is_greedy, next_token
from rnnlab.models.rnn_lm import RNNLanguageModel

V = 29
PROMPT = [3, 1, 4, 1, 5]
SETTINGS = {
    "temperature-top-p": dict(temperature=0.8, top_p=0.9),
    "top-p": dict(temperature=1.0, top_p=0.5),
    "temperature": dict(temperature=1.3),
    "plain": dict(temperature=1.0),
    "top-k-top-p": dict(temperature=0.7, top_k=5, top_p=0.9),
    "creativity": dict(strategy="creativity", top_k=3),
    "greedy": dict(temperature=0),
}


def _model(cell: str = "lstm", scale: float = 0.5, **options) -> RNNLanguageModel:
    """A random model with peaked next-token distributions (weights up to `scale`, above the initialisation)."""
    torch.manual_seed(7)
    settings = dict(vocab_size=V, cell=cell, layers=2, hidden_size=32, embedding_size=12, dropout=0.0)
    model = RNNLanguageModel(ModelConfig(**{**settings, **options})).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-scale, scale)
    return model


@torch.inference_mode()
def _reference_decode(model, prompt_ids, config: SampleConfig, banned=(), stop_token=None, device="cpu"):
    """The decode loop as it was: one model() call and one next_token() per step, tensors made afresh."""
    batch = config.num_samples
    logits, state = prime(model, prompt_ids, batch, device)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    chain, greedy = build_chain(config), is_greedy(config)
    ban_bias = torch.zeros(V, device=device)
    ban_bias[list(banned)] = float("-inf")
    rows = [[] for _ in range(batch)]
    logprob_rows = [[] for _ in range(batch)]
    active = set(range(batch))
    for _ in range(config.length):
        choice = next_token(logits + ban_bias, chain, greedy, generator)
        logprob = torch.log_softmax(logits, dim=-1).gather(1, choice[:, None])[:, 0]
        for row in sorted(active):
            rows[row].append(int(choice[row]))
            logprob_rows[row].append(float(logprob[row]))
            if stop_token is not None and int(choice[row]) == stop_token:
                active.discard(row)
        if not active:
            break
        step_logits, state = model(choice[:, None], state)
        logits = step_logits[:, -1]
    return rows, logprob_rows, state, logits


def _decode(model, config: SampleConfig, banned=(), stop_token=None, device="cpu"):
    is_stopped = None if stop_token is None else (lambda row, token: token == stop_token)
    samples, (state, logits) = decode(model, PROMPT, config, device, is_stopped=is_stopped, banned=banned)
    return [s.ids for s in samples], [s.logprobs for s in samples], state, logits


def _assert_same_run(got, expected) -> None:
    ids, logprobs, state, logits = got
    ref_ids, ref_logprobs, ref_state, ref_logits = expected
    assert ids == ref_ids
    for row, ref_row in zip(logprobs, ref_logprobs):
        assert row == pytest.approx(ref_row, abs=1e-5)
    for a, b in zip(state if isinstance(state, tuple) else (state,),
                    ref_state if isinstance(ref_state, tuple) else (ref_state,)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=0)


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("settings", SETTINGS)
def test_a_seed_gives_the_tokens_the_old_loop_gave(settings, batch):
    config = SampleConfig(length=120, num_samples=batch, seed=11, **SETTINGS[settings])
    model = _model()
    _assert_same_run(_decode(model, config, banned=[0, 2]), _reference_decode(model, PROMPT, config, [0, 2]))


@pytest.mark.parametrize("options", [dict(cell="gru"), dict(cell="rnn_relu", tie_weights=True, scale=0.2),
                                     dict(input="onehot"), dict(cell_impl="reference")])
def test_other_models_give_the_old_tokens_too(options):
    config = SampleConfig(length=80, num_samples=3, seed=5, temperature=0.9, top_p=0.8)
    model = _model(**options)
    _assert_same_run(_decode(model, config), _reference_decode(model, PROMPT, config))


def test_noise_drawn_in_small_blocks_gives_the_same_tokens(monkeypatch):
    # 2 rows * 29 tokens = 58 numbers a step: a 150-number block holds 2 steps, so 61 blocks for 121 steps
    monkeypatch.setattr(sampler_module, "_NOISE_BLOCK", 150)
    config = SampleConfig(length=121, num_samples=2, seed=3, temperature=0.8, top_p=0.9)
    model = _model()
    _assert_same_run(_decode(model, config), _reference_decode(model, PROMPT, config))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("settings", ["temperature-top-p", "top-k-top-p", "greedy"])
def test_on_a_gpu_the_model_steps_itself_and_the_old_tokens_come_out(settings):
    """Off the CPU the model's own forward steps and the noise is drawn step by step."""
    config = SampleConfig(length=60, num_samples=4, seed=11, **SETTINGS[settings])
    model = _model().cuda()
    got = _decode(model, config, banned=[0], device="cuda")
    _assert_same_run(got, _reference_decode(model, PROMPT, config, [0], device="cuda"))


def test_rows_stop_on_their_own_and_the_state_stops_before_the_last_token():
    config = SampleConfig(length=200, num_samples=3, seed=2, temperature=1.0)
    model = _model()
    got = _decode(model, config, stop_token=4)
    _assert_same_run(got, _reference_decode(model, PROMPT, config, stop_token=4))
    assert all(ids[-1] == 4 for ids in got[0]) and len({len(ids) for ids in got[0]}) > 1


def test_decoding_on_from_a_carried_state_and_logits():
    """Interactive sessions pass the state and logits from one call to the next."""
    model = _model("gru")
    config = SampleConfig(length=30, seed=9, temperature=0.8, top_p=0.9)
    first, (state, logits) = decode(model, PROMPT, config)
    second, (state2, logits2) = decode(model, [], config.replace(seed=10), state=state, logits=logits)
    ids = PROMPT + first[0].ids + second[0].ids
    with torch.inference_mode():
        full, full_state = model(torch.tensor([ids]))
    recomputed = torch.log_softmax(full[0], dim=-1)
    start = len(PROMPT) + 30
    expected = [float(recomputed[start - 1 + i, token]) for i, token in enumerate(second[0].ids)]
    assert second[0].logprobs == pytest.approx(expected, abs=1e-5)
    torch.testing.assert_close(state2, full_state, atol=1e-5, rtol=0)
    torch.testing.assert_close(logits2, full[:, -1], atol=1e-5, rtol=0)


def test_zero_length_hands_back_the_primed_state_and_logits():
    model = _model()
    samples, (state, logits) = decode(model, PROMPT, SampleConfig(length=0, seed=1))
    expected_logits, expected_state = prime(model, PROMPT, 1, "cpu")
    assert samples[0].ids == [] and samples[0].stopped == "length"
    torch.testing.assert_close(logits, expected_logits)
    torch.testing.assert_close(state, expected_state)
