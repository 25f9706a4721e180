"""Parity of the reference cells with torch's fused modules: same weights, same outputs, states, gradients."""

import pytest
import torch
from torch import nn

from rnnlab.errors import ConfigError
from rnnlab.models.cells import ElmanCell, GRUCell, LSTMCell, ReferenceRNN, make_recurrent

B, T, IN, H = 3, 5, 4, 6  # batch, steps, input size, hidden size: tiny, the parity holds at any size
MODES = ("lstm", "gru", "rnn_tanh", "rnn_relu")


def _fused(mode, num_layers=1, bidirectional=False, dropout=0.0):
    return make_recurrent(mode, IN, H, num_layers, dropout, bidirectional, impl="fused")


def _pair(mode, num_layers=1, bidirectional=False):
    """A fused module and a ReferenceRNN holding the very same weights."""
    torch.manual_seed(0)
    fused = _fused(mode, num_layers, bidirectional)
    reference = ReferenceRNN(mode, IN, H, num_layers, bidirectional=bidirectional)
    reference.load_state_dict(fused.state_dict())
    return fused, reference


def _initial_state(mode, rows, generator):
    h = torch.randn(rows, B, H, generator=generator)
    return (h, torch.randn(rows, B, H, generator=generator)) if mode == "lstm" else h


def _as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("given_state", [False, True])
def test_outputs_and_final_state_match_torch(mode, num_layers, bidirectional, given_state):
    fused, reference = _pair(mode, num_layers, bidirectional)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, T, IN, generator=g)
    directions = 2 if bidirectional else 1
    state = _initial_state(mode, num_layers * directions, g) if given_state else None

    with torch.no_grad():
        out_f, state_f = fused(x, state)
        out_r, state_r = reference(x, state)

    assert out_r.shape == (B, T, directions * H)
    torch.testing.assert_close(out_r, out_f, atol=1e-5, rtol=0)
    assert len(_as_tuple(state_r)) == len(_as_tuple(state_f)) == (2 if mode == "lstm" else 1)
    for mine, theirs in zip(_as_tuple(state_r), _as_tuple(state_f)):
        assert mine.shape == (num_layers * directions, B, H)
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", MODES)
def test_parameter_names_and_shapes_are_torch_s_both_ways(mode):
    fused = _fused(mode, num_layers=2, bidirectional=True)
    reference = ReferenceRNN(mode, IN, H, num_layers=2, bidirectional=True)
    theirs = {k: v.shape for k, v in fused.state_dict().items()}
    mine = {k: v.shape for k, v in reference.state_dict().items()}
    assert list(mine) == list(theirs)  # same names, same order
    assert mine == theirs
    gates = {"lstm": 4, "gru": 3}.get(mode, 1)
    assert mine["weight_ih_l0"] == (gates * H, IN)
    assert mine["weight_ih_l1_reverse"] == (gates * H, 2 * H)
    assert mine["bias_hh_l1_reverse"] == (gates * H,)
    # and back: fused loads the reference's weights
    fused.load_state_dict(reference.state_dict())
    for name, value in reference.state_dict().items():
        assert torch.equal(fused.state_dict()[name], value)


def test_gradients_match_torch():
    fused, reference = _pair("lstm", num_layers=2, bidirectional=True)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(B, T, IN, generator=g)
    target = torch.randn(B, T, 2 * H, generator=g)
    x_f, x_r = x.clone().requires_grad_(), x.clone().requires_grad_()
    state = _initial_state("lstm", 4, g)

    for module, inputs in ((fused, x_f), (reference, x_r)):
        out, (h, c) = module(inputs, state)
        ((out - target) ** 2).sum().add(h.sum() + c.sum()).backward()

    torch.testing.assert_close(x_r.grad, x_f.grad, atol=1e-5, rtol=0)
    grads_f = {n: p.grad for n, p in fused.named_parameters()}
    for name, p in reference.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        torch.testing.assert_close(p.grad, grads_f[name], atol=1e-5, rtol=0, msg=name)


@pytest.mark.parametrize("mode", ["gru", "rnn_tanh"])
def test_gradients_match_torch_for_gru_and_elman(mode):
    fused, reference = _pair(mode)
    x = torch.randn(B, T, IN, generator=torch.Generator().manual_seed(3))
    for module in (fused, reference):
        out, h = module(x)
        (out.pow(2).sum() + h.sum()).backward()
    grads_f = {n: p.grad for n, p in fused.named_parameters()}
    for name, p in reference.named_parameters():
        torch.testing.assert_close(p.grad, grads_f[name], atol=1e-5, rtol=0, msg=name)


def test_lstm_cell_by_hand():
    # One hidden unit, one input: the gates can be worked out on paper.
    cell = LSTMCell(1, 1)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.tensor([[1.0], [2.0], [0.5], [-1.0]]))  # i, f, g, o
        cell.weight_hh.zero_()
        cell.bias_ih.zero_()
        cell.bias_hh.zero_()
    x, h, c = torch.tensor([[1.0]]), torch.tensor([[0.3]]), torch.tensor([[0.4]])
    h_new, c_new = cell(x, (h, c))
    # i = σ(1) = 0.731059, f = σ(2) = 0.880797, g = tanh(0.5) = 0.462117, o = σ(-1) = 0.268941
    # c' = 0.880797 * 0.4 + 0.731059 * 0.462117 = 0.352319 + 0.337835 = 0.690154
    # h' = 0.268941 * tanh(0.690154) = 0.268941 * 0.598081 = 0.160849
    assert c_new.item() == pytest.approx(0.690154, abs=1e-5)
    assert h_new.item() == pytest.approx(0.160849, abs=1e-5)


def test_gru_cell_by_hand():
    cell = GRUCell(1, 1)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.tensor([[0.0], [0.0], [1.0]]))  # r, z, n
        cell.weight_hh.copy_(torch.tensor([[0.0], [0.0], [2.0]]))
        cell.bias_ih.zero_()
        cell.bias_hh.copy_(torch.tensor([0.0, 0.0, 1.0]))
    # r = z = σ(0) = 0.5; n = tanh(1 + 0.5 * (2 * 0.5 + 1)) = tanh(2) = 0.964028
    # h' = 0.5 * 0.964028 + 0.5 * 0.5 = 0.732014
    h_new = cell(torch.tensor([[1.0]]), torch.tensor([[0.5]]))
    assert h_new.item() == pytest.approx(0.732014, abs=1e-5)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_elman_cell_by_hand(nonlinearity):
    cell = ElmanCell(2, 1, nonlinearity)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.tensor([[1.0, -2.0]]))
        cell.weight_hh.copy_(torch.tensor([[0.5]]))
        cell.bias_ih.copy_(torch.tensor([0.25]))
        cell.bias_hh.copy_(torch.tensor([-0.5]))
    # pre = 1*1 - 2*1 + 0.25 + 0.5*(-1) - 0.5 = -1.75
    h_new = cell(torch.tensor([[1.0, 1.0]]), torch.tensor([[-1.0]]))
    expected = -0.941376 if nonlinearity == "tanh" else 0.0  # tanh(-1.75)
    assert h_new.item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("mine, theirs", [(LSTMCell, nn.LSTMCell), (GRUCell, nn.GRUCell),
                                          (ElmanCell, nn.RNNCell)])
def test_cells_load_torch_cell_weights_and_match(mine, theirs):
    torch.manual_seed(4)
    fused, cell = theirs(IN, H), mine(IN, H)
    cell.load_state_dict(fused.state_dict())
    x = torch.randn(B, IN)
    with torch.no_grad():
        for a, b in zip(_as_tuple(cell(x)), _as_tuple(fused(x))):  # zero initial state on both sides
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_dropout_acts_between_layers_only_and_only_in_training():
    torch.manual_seed(5)
    x = torch.randn(B, T, IN)
    one_layer = ReferenceRNN("gru", IN, H, num_layers=1, dropout=0.5)
    one_layer.train()
    # one layer: nothing to drop between, so training and eval agree
    torch.testing.assert_close(one_layer(x)[0], one_layer.eval()(x)[0], atol=0, rtol=0)

    two_layers = ReferenceRNN("gru", IN, H, num_layers=2, dropout=0.5)
    fused = _fused("gru", num_layers=2, dropout=0.5)
    fused.load_state_dict(two_layers.state_dict())
    with torch.no_grad():
        eval_out = two_layers.eval()(x)[0]
        torch.testing.assert_close(eval_out, fused.eval()(x)[0], atol=1e-5, rtol=0)
        train_out = two_layers.train()(x)[0]
    assert not torch.allclose(train_out, eval_out, atol=1e-3)


def test_time_major_input_when_not_batch_first():
    fused, reference = _pair("lstm")
    ref_tb = ReferenceRNN("lstm", IN, H, batch_first=False)
    ref_tb.load_state_dict(reference.state_dict())
    x = torch.randn(B, T, IN, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        out_bt, (h_bt, _) = fused(x)
        out_tb, (h_tb, _) = ref_tb(x.transpose(0, 1))
    assert out_tb.shape == (T, B, H)
    torch.testing.assert_close(out_tb.transpose(0, 1), out_bt, atol=1e-5, rtol=0)
    torch.testing.assert_close(h_tb, h_bt, atol=1e-5, rtol=0)


def test_make_recurrent_builds_the_right_module():
    assert type(make_recurrent("lstm", IN, H)) is nn.LSTM
    assert type(make_recurrent("gru", IN, H)) is nn.GRU
    tanh, relu = make_recurrent("rnn_tanh", IN, H), make_recurrent("rnn_relu", IN, H)
    assert (type(tanh), tanh.nonlinearity, type(relu), relu.nonlinearity) == (nn.RNN, "tanh", nn.RNN, "relu")
    fused = make_recurrent("gru", IN, H, num_layers=3, dropout=0.2, bidirectional=True)
    assert (fused.num_layers, fused.dropout, fused.batch_first, fused.bidirectional) == (3, 0.2, True, True)
    reference = make_recurrent("rnn_relu", IN, H, 2, 0.1, True, impl="reference")
    assert isinstance(reference, ReferenceRNN)
    assert (reference.mode, reference.num_layers, reference.dropout, reference.bidirectional) == \
        ("rnn_relu", 2, 0.1, True)


@pytest.mark.parametrize("kwargs, flag", [
    ({"mode": "transformer"}, "--cell"),
    ({"hidden_size": 0}, "--hidden"),
    ({"num_layers": 0}, "--layers"),
    ({"dropout": 1.0}, "--dropout"),
    ({"impl": "cudnn"}, "--cell-impl"),
])
def test_bad_settings_raise_config_error_naming_the_flag(kwargs, flag):
    settings = {"mode": "lstm", "input_size": IN, "hidden_size": H, "num_layers": 1, "dropout": 0.0,
                "bidirectional": False, "impl": "reference"} | kwargs
    with pytest.raises(ConfigError, match=f"^{flag} "):
        make_recurrent(**settings)
    if "impl" not in kwargs:
        settings.pop("impl")
        with pytest.raises(ConfigError, match=f"^{flag} "):
            ReferenceRNN(**settings)
