"""The inference stepper against the model's own forward, token by token, for every model it covers."""

from __future__ import annotations

import pytest
import torch

from rnnlab.config import ModelConfig
from rnnlab.generation.stepper import CellStepper, ModelStepper, WindowStepper, make_stepper, step_kind
from rnnlab.models.rnn_lm import RNNLanguageModel

V, E, H = 13, 6, 8
CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu")
# embedding; tied with a projection (H != E); tied without one (H == E); one-hot input
VARIANTS = {
    "embedding": dict(),
    "tied": dict(tie_weights=True),
    "tied-same-width": dict(tie_weights=True, embedding_size=H),
    "onehot": dict(input="onehot"),
}


def _model(cell: str, layers: int, seed: int = 0, **options) -> RNNLanguageModel:
    """A small model in eval mode with every weight and bias drawn at random (zero biases hide mistakes)."""
    torch.manual_seed(seed)
    settings = dict(vocab_size=V, cell=cell, layers=layers, hidden_size=H, embedding_size=E, dropout=0.3)
    model = RNNLanguageModel(ModelConfig(**{**settings, **options})).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-0.7, 0.7)
    return model


def _random_state(model: RNNLanguageModel, batch: int):
    c = model.config
    h = torch.randn(c.layers, batch, c.hidden_size) * 0.5
    return (h, torch.randn_like(h)) if c.cell == "lstm" else h


def _assert_states_close(got, expected) -> None:
    got = got if isinstance(got, tuple) else (got,)
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def _follow(model, stepper, ids: torch.Tensor, state) -> None:
    """Step `stepper` and the model's forward through ids[B, T] side by side, comparing each step."""
    with torch.inference_mode():
        for t in range(ids.shape[1]):
            expected, state = model(ids[:, t:t + 1], state)
            got = stepper.step(ids[:, t])
            torch.testing.assert_close(got, expected[:, 0], atol=1e-5, rtol=0)
            _assert_states_close(stepper.state(), state)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("cell", CELLS)
def test_stepper_logits_and_state_follow_the_model(cell, layers, variant):
    model = _model(cell, layers, **VARIANTS[variant])
    assert model.step_kind() == "gated"
    ids = torch.randint(0, V, (3, 15), generator=torch.Generator().manual_seed(1))
    state = _random_state(model, 3)
    _follow(model, CellStepper(model, state, batch=3), ids, state)


@pytest.mark.parametrize("cell", CELLS)
def test_unfolded_input_projection_follows_the_model(cell):
    model = _model(cell, 2, tie_weights=True)
    ids = torch.randint(0, V, (2, 10), generator=torch.Generator().manual_seed(2))
    _follow(model, CellStepper(model, None, batch=2, fold=False), ids, None)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_stepping_continues_from_a_primed_state(cell):
    """Prime with one fused forward over a prompt, then step: the state format is the model's own."""
    model = _model(cell, 2)
    prompt = torch.randint(0, V, (1, 20), generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        _, state = model(prompt)
    ids = torch.randint(0, V, (1, 8), generator=torch.Generator().manual_seed(4))
    _follow(model, make_stepper(model, state, batch=1, steps=8), ids, state)


def test_the_state_handed_out_is_a_copy():
    model = _model("lstm", 1)
    stepper = CellStepper(model, None, batch=1)
    with torch.inference_mode():
        before = stepper.state()
        stepper.step(torch.tensor([3]))
    assert torch.equal(before[0], torch.zeros(1, 1, H)) and torch.equal(before[1], torch.zeros(1, 1, H))


def test_a_large_vocabulary_with_few_steps_skips_the_table():
    model = _model("gru", 1)
    # V = 13 rows against 1 step * 2 rows: building the table would cost more than it saves
    assert not make_stepper(model, None, batch=2, steps=1).folded
    assert make_stepper(model, None, batch=2, steps=50).folded


@pytest.mark.parametrize("why, model", [
    ("reference cells", lambda: _model("lstm", 2, cell_impl="reference")),
    ("training mode", lambda: _model("lstm", 1).train()),
    ("float64 weights", lambda: _model("rnn_tanh", 1).double()),
])
def test_models_it_does_not_cover_are_stepped_by_their_own_forward(why, model):
    model = model()
    assert step_kind(model) is None, why
    assert isinstance(make_stepper(model, None, batch=1, steps=10), ModelStepper)


def test_the_model_stepper_follows_the_model():
    model = _model("lstm", 2, cell_impl="reference")
    ids = torch.randint(0, V, (2, 6), generator=torch.Generator().manual_seed(5))
    state = _random_state(model, 2)
    _follow(model, ModelStepper(model, state), ids, state)


class _OwnForward(RNNLanguageModel):
    """A subclass that changes what forward computes: the fast path must not replay the base's equations."""

    def forward(self, ids, state=None, lengths=None, return_hidden=False):
        logits, state = super().forward(ids, state, lengths)
        return logits * 2, state


def test_a_model_that_changes_forward_is_stepped_by_its_forward():
    torch.manual_seed(0)
    model = _OwnForward(ModelConfig(vocab_size=V, hidden_size=H, embedding_size=E)).eval()
    assert step_kind(model) is None
    assert isinstance(make_stepper(model, None, batch=1, steps=5), ModelStepper)
    assert step_kind(torch.nn.Linear(2, 2)) is None  # a module that does not answer


def test_the_stepper_reads_the_weights_the_model_hands_out(monkeypatch):
    """The stepper reads weights through the model's own accessor, not by torch's parameter names."""
    model = _model("lstm", 2)
    real = model.gated_layer_weights()
    calls = []
    monkeypatch.setattr(model, "gated_layer_weights", lambda: calls.append(1) or real)
    CellStepper(model, None, batch=1)
    assert calls == [1]


@pytest.mark.parametrize("variant, fold", [(v, True) for v in VARIANTS] + [("embedding", False), ("tied", False)])
@pytest.mark.parametrize("cell", CELLS)
def test_a_resized_stepper_follows_the_model_and_leaves_the_first_alone(cell, variant, fold):
    """A server's batch changes size as requests come and go: the resized stepper shares the prepared
    weights, has its own buffers, and both follow the model."""
    model = _model(cell, 2, **VARIANTS[variant])
    first_state = _random_state(model, 3)
    first = CellStepper(model, first_state, batch=3, fold=fold)
    state = _random_state(model, 5)
    resized = first.resized(state, 5)
    assert resized.layers[0].w_hh_t is first.layers[0].w_hh_t  # shared, not prepared again
    ids = torch.randint(0, V, (5, 6), generator=torch.Generator().manual_seed(6))
    _follow(model, resized, ids, state)
    _follow(model, first, ids[:3], first_state)  # untouched by the resized one's steps
    _follow(model, first.resized(None, 1), ids[:1], None)


def test_the_model_stepper_resizes_to_its_own_forward():
    model = _model("lstm", 1, cell_impl="reference")
    state = _random_state(model, 4)
    stepper = ModelStepper(model, None).resized(state, 4)
    ids = torch.randint(0, V, (4, 5), generator=torch.Generator().manual_seed(7))
    _follow(model, stepper, ids, state)


@pytest.mark.parametrize("kind, options", [("window", dict(context=4)), ("prefix", {}),
                                           ("bidirectional prefix", dict(bidirectional=True))])
def test_a_window_or_prefix_model_is_stepped_by_reading_what_it_was_trained_to_read(kind, options):
    """Each step's logits are the model's on the last `context` ids (window), on the whole row (prefix)."""
    model = _model("lstm", 1, output="last", **options)
    prompt = torch.randint(0, V, (2, 6), generator=torch.Generator().manual_seed(8))
    with torch.inference_mode():
        _, state = model(prompt)
        stepper = make_stepper(model, state, batch=2, steps=5, rows=prompt)
        assert isinstance(stepper, WindowStepper), kind
        assert model.step_kind() is None
        rows = prompt
        for t in range(5):
            token = torch.tensor([t % V, (3 * t) % V])
            rows = torch.cat([rows, token[:, None]], dim=1)
            expected, _ = model(rows[:, -options["context"]:] if "context" in options else rows)
            torch.testing.assert_close(stepper.step(token), expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="rows"):
        make_stepper(model, None, batch=1, steps=3)
