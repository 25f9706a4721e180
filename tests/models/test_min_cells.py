"""minGRU and minLSTM (Feng et al. 2024): both scans against the cells' own step-by-step equations,
the residual stack against its one-token path, and the language model built on them."""

from __future__ import annotations

import pytest
import torch

from rnnlab.config import ModelConfig
from rnnlab.errors import ConfigError
from rnnlab.generation.stepper import MinStepper, ModelStepper, make_stepper
from rnnlab.models.cells import MinGRUCell, MinLSTMCell, MinRNN, g, log_g, scan_linear, scan_log
from rnnlab.models.rnn_lm import RNNLanguageModel

CELLS = {"mingru": MinGRUCell, "minlstm": MinLSTMCell}


def _stepwise(cell, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The recurrence as the cell's docstring writes it, one step at a time: [B, T, I] -> [B, T, H]."""
    out = []
    for t in range(x.shape[1]):
        h = type(cell).step(x[:, t], h, cell.linear.weight, cell.linear.bias)
        out.append(h)
    return torch.stack(out, dim=1)


def test_g_is_positive_continuous_and_its_log_is_exact():
    x = torch.tensor([-30.0, -2.0, -1e-6, 0.0, 1e-6, 3.0])
    assert (g(x) > 0).all()
    torch.testing.assert_close(g(x), torch.tensor([torch.sigmoid(torch.tensor(-30.0)).item(),
                                                   torch.sigmoid(torch.tensor(-2.0)).item(), 0.5, 0.5, 0.5, 3.5]),
                               atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(log_g(x), g(x).log(), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("scan", [scan_linear, scan_log])
def test_both_scans_solve_the_linear_recurrence_by_hand(scan):
    # h1 = 0.5 * 2 + 1 = 2, h2 = 0.25 * 2 + 3 = 3.5, h3 = 1.0 * 3.5 + 0.5 = 4
    a = torch.tensor([0.5, 0.25, 1.0]).view(1, 3, 1)
    b = torch.tensor([1.0, 3.0, 0.5]).view(1, 3, 1)
    got = scan(a, b, torch.tensor([[2.0]])) if scan is scan_linear else scan(a.log(), b.log(), torch.tensor([[2.0]]))
    torch.testing.assert_close(got.flatten(), torch.tensor([2.0, 3.5, 4.0]))
    # from zeros: h1 = 1, h2 = 3.25, h3 = 3.75
    got = scan(a, b) if scan is scan_linear else scan(a.log(), b.log())
    torch.testing.assert_close(got.flatten(), torch.tensor([1.0, 3.25, 3.75]))


@pytest.mark.parametrize("steps", [1, 7, 64, 256])
@pytest.mark.parametrize("carried", [False, True], ids=["zero-state", "carried-state"])
@pytest.mark.parametrize("scan", ["linear", "log"])
@pytest.mark.parametrize("name", CELLS)
def test_the_scan_equals_the_step_by_step_recurrence(name, scan, carried, steps):
    torch.manual_seed(steps)
    cell = CELLS[name](12, 20)
    x = torch.randn(3, steps, 12) * 2
    h0 = torch.rand(3, 20) * 3 if carried else None
    expected = _stepwise(cell, x, h0 if carried else torch.zeros(3, 20))
    torch.testing.assert_close(cell(x, h0, scan=scan), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", CELLS)
def test_the_sequential_scan_has_the_gradients_of_the_recurrence(name):
    torch.manual_seed(0)
    cell = CELLS[name](5, 6).double()
    x = torch.randn(2, 9, 5, dtype=torch.double, requires_grad=True)
    h0 = torch.rand(2, 6, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, h: cell(x, h, scan="linear"), (x, h0))
    # and the same gradients as autograd through the step-by-step equations
    weights = torch.randn(2, 9, 6, dtype=torch.double)
    fast = torch.autograd.grad((cell(x, h0) * weights).sum(), [x, h0, cell.linear.weight, cell.linear.bias])
    slow = torch.autograd.grad((_stepwise(cell, x, h0) * weights).sum(),
                               [x, h0, cell.linear.weight, cell.linear.bias])
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("mlp_ratio", [0, 2])
@pytest.mark.parametrize("mode", CELLS)
def test_the_stack_carries_its_state_across_segments_and_steps_like_it_scans(mode, mlp_ratio):
    torch.manual_seed(1)
    stack = MinRNN(mode, 6, 16, num_layers=3, dropout=0.0, mlp_ratio=mlp_ratio).eval()
    x = torch.randn(2, 40, 6)
    whole, state = stack(x)
    first, mid = stack(x[:, :15])
    second, end = stack(x[:, 15:], mid)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole, atol=1e-5, rtol=0)
    torch.testing.assert_close(end, state, atol=1e-5, rtol=0)
    h = torch.zeros(3, 2, 16)
    for t in range(40):
        out, h = stack.step(x[:, t], h)
        torch.testing.assert_close(out, whole[:, t], atol=1e-5, rtol=0)
    torch.testing.assert_close(h, state, atol=1e-5, rtol=0)
    assert state.shape == (3, 2, 16) and (state > 0).all()  # the cells' states are positive


def _model(cell: str, **options) -> RNNLanguageModel:
    torch.manual_seed(0)
    settings = dict(vocab_size=11, cell=cell, layers=2, hidden_size=16, embedding_size=8, dropout=0.3,
                    mlp_ratio=2)
    return RNNLanguageModel(ModelConfig(**{**settings, **options})).eval()


@pytest.mark.parametrize("variant", [{}, {"tie_weights": True}, {"input": "onehot"}, {"mlp_ratio": 0},
                                     {"embedding_size": 16}], ids=["embedding", "tied", "onehot", "no-mlp",
                                                                   "no-input-projection"])
@pytest.mark.parametrize("cell", CELLS)
def test_generation_token_by_token_equals_a_full_forward_pass(cell, variant):
    model = _model(cell, **variant)
    ids = torch.randint(0, 11, (3, 30), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        full, state = model(ids)
        stepper = make_stepper(model, None, batch=3, steps=30)
        assert isinstance(stepper, MinStepper)
        for t in range(30):
            torch.testing.assert_close(stepper.step(ids[:, t]), full[:, t], atol=1e-5, rtol=0)
        torch.testing.assert_close(stepper.state(), state, atol=1e-5, rtol=0)


@pytest.mark.parametrize("resized", [False, True], ids=["made", "resized"])
@pytest.mark.parametrize("cell", CELLS)
def test_the_stepper_continues_from_a_primed_state(cell, resized):
    """Made for the primed rows, or resized to them from a stepper of another batch (sharing its table)."""
    model = _model(cell)
    rows = 2 if resized else 1
    ids = torch.randint(0, 11, (rows, 25), generator=torch.Generator().manual_seed(3 + resized))
    with torch.inference_mode():
        full, _ = model(ids)
        _, primed = model(ids[:, :17])
        if resized:
            first = make_stepper(model, None, batch=5, steps=8)
            stepper = first.resized(primed, rows)
            assert stepper.table is first.table and first.h.shape[1] == 5
        else:
            stepper = make_stepper(model, primed, batch=1, steps=8)
        for t in range(17, 25):
            torch.testing.assert_close(stepper.step(ids[:, t]), full[:, t], atol=1e-5, rtol=0)


def test_a_min_model_in_training_mode_is_stepped_by_its_forward():
    model = _model("mingru").train()
    assert isinstance(make_stepper(model, None, batch=1, steps=5), ModelStepper)


def test_dropout_acts_in_training_only():
    model = _model("minlstm", dropout=0.5)
    ids = torch.randint(0, 11, (2, 12), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        eval_a, _ = model(ids)
        eval_b, _ = model(ids)
        model.train()
        train_a, _ = model(ids)
    assert torch.equal(eval_a, eval_b) and not torch.allclose(train_a, eval_a)


@pytest.mark.parametrize("settings, flag", [
    (dict(weight_drop=0.2), "--weight-drop"),
    (dict(bidirectional=True, output="last"), "--bidirectional"),
    (dict(cell_impl="reference"), "--cell-impl"),
    (dict(mlp_ratio=-1), "--mlp-ratio"),
])
def test_settings_the_min_cells_cannot_honour_are_refused_by_flag(settings, flag):
    with pytest.raises(ConfigError, match=flag):
        ModelConfig(vocab_size=5, cell="mingru", **settings)

