"""AWD-LSTM's regularisers: embedding dropout, locked dropout (inputs, between layers, outputs), AR/TAR."""

import pytest
import torch
import torch.nn.functional as F

from rnnlab.config import ModelConfig, TrainConfig
from rnnlab.data.batching import Batch
from rnnlab.errors import ConfigError
from rnnlab.models import rnn_lm
from rnnlab.models.rnn_lm import RNNLanguageModel
from rnnlab.training.loop import (
    activation_regularisation,
    batch_loss,
    check_regularisers,
    temporal_activation_regularisation,
)

CPU = torch.device("cpu")


def model_of(**kw) -> RNNLanguageModel:
    torch.manual_seed(0)
    base = dict(vocab_size=11, hidden_size=24, embedding_size=16, layers=1, dropout=0.0)
    return RNNLanguageModel(ModelConfig(**{**base, **kw}))


def assert_locked(x: torch.Tensor) -> None:
    """Zeros of x [B, T, F] fall on the same features at every step, and the masks differ between rows."""
    zero = x == 0
    assert zero.any() and (~zero).any()
    assert torch.equal(zero, zero[:, :1].expand_as(zero)), "a mask changed over time"
    assert not all(torch.equal(zero[0, 0], zero[b, 0]) for b in range(1, x.shape[0])), "one mask for all rows"


def test_locked_dropout_on_inputs_is_one_mask_per_sequence():
    model = model_of(dropout=0.5, locked_dropout=True).train()
    seen = []
    model.rnn.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    ids = torch.randint(0, 11, (6, 9))
    model(ids)
    assert_locked(seen[0])
    # the kept features are scaled by 1/(1-p)
    x = model.embedding(ids)
    kept = seen[0] != 0
    torch.testing.assert_close(seen[0][kept], (x * 2)[kept])


def test_plain_dropout_is_per_element_without_locked():
    model = model_of(dropout=0.5).train()
    seen = []
    model.rnn.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    model(torch.randint(0, 11, (6, 9)))
    zero = seen[0] == 0
    assert not torch.equal(zero, zero[:, :1].expand_as(zero))


@pytest.mark.parametrize("cell,mode", [("lstm", "LSTM"), ("gru", "GRU"), ("rnn_tanh", "RNN_TANH")])
def test_locked_dropout_between_fused_layers_and_on_outputs(monkeypatch, cell, mode):
    model = model_of(cell=cell, layers=3, dropout=0.5, locked_dropout=True).train()
    inputs = []
    op = rnn_lm._LAYER_OPS[mode]

    def recording(x, *args):
        inputs.append(x)
        return op(x, *args)

    monkeypatch.setitem(rnn_lm._LAYER_OPS, mode, recording)
    logits, state, (raw, dropped) = model(torch.randint(0, 11, (6, 9)), return_hidden=True)
    assert len(inputs) == 3  # one call per layer
    for between in inputs[1:]:
        assert_locked(between)
    assert_locked(dropped)
    assert (raw != 0).all()
    kept = dropped != 0
    torch.testing.assert_close(dropped[kept], (raw * 2)[kept])
    h = state[0] if cell == "lstm" else state
    assert h.shape == (3, 6, 24)
    assert logits.shape == (6, 9, 11)


def test_locked_dropout_is_off_in_eval_mode():
    model = model_of(layers=2, dropout=0.5, locked_dropout=True, embed_dropout=0.3).eval()
    plain = model_of(layers=2).eval()
    plain.load_state_dict(model.state_dict())
    ids = torch.randint(0, 11, (3, 7))
    assert torch.equal(model(ids)[0], plain(ids)[0])


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
def test_layer_by_layer_equals_the_fused_stack_with_carried_state(cell):
    model = model_of(cell=cell, layers=3).train()  # dropout 0: no masks between layers
    x = torch.randn(4, 6, 16, requires_grad=True)
    shape = (3, 4, 24)
    state = (torch.randn(shape), torch.randn(shape)) if cell == "lstm" else torch.randn(shape)
    ours, our_state = model._layer_by_layer(x, state, {})
    theirs, their_state = model.rnn(x, state)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    for a, b in zip(our_state if cell == "lstm" else [our_state], their_state if cell == "lstm" else [their_state]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    params = [x, *model.rnn.parameters()]
    loss = lambda out, st: out.pow(2).sum() + sum(s.sum() for s in (st if isinstance(st, tuple) else [st]))  # noqa: E731
    g_ours = torch.autograd.grad(loss(ours, our_state), params)
    g_theirs = torch.autograd.grad(loss(theirs, their_state), params)
    for a, b in zip(g_ours, g_theirs):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_layer_by_layer_composes_with_weight_drop():
    model = model_of(layers=2, weight_drop=0.5).train()
    x = torch.randn(3, 5, 16)
    dropped = {n: F.dropout(w, 0.5) for n, w in model.rnn.named_parameters() if n.startswith("weight_hh")}
    ours, _ = model._layer_by_layer(x, None, dropped)
    theirs, _ = torch.func.functional_call(model.rnn, dropped, (x, None))
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    plain, _ = model.rnn(x)
    assert not torch.allclose(ours, plain)
    # and the whole training forward runs with a carried state, backward reaching weight_hh
    model = model_of(layers=2, weight_drop=0.5, dropout=0.3, locked_dropout=True).train()
    ids = torch.randint(0, 11, (3, 5))
    _, state = model(ids)
    logits, _ = model(ids, rnn_lm.detach_state(state))
    logits.sum().backward()
    assert model.rnn.weight_hh_l1.grad is not None and model.rnn.weight_hh_l1.grad.abs().sum() > 0


def test_embedding_dropout_drops_whole_rows():
    model = model_of(embed_dropout=0.5).train()
    ids = torch.arange(11).repeat(4, 3)[:, torch.randperm(33)]  # every token many times, shuffled
    torch.manual_seed(3)
    x = model.embed(ids)
    weight = model.embedding.weight
    dropped_tokens, kept_tokens = set(), set()
    for v in range(11):
        rows = x[ids == v]
        if (rows == 0).all():
            dropped_tokens.add(v)
        else:
            torch.testing.assert_close(rows, (weight[v] * 2).expand_as(rows))
            kept_tokens.add(v)
    assert dropped_tokens and kept_tokens
    assert torch.equal(model.eval().embed(ids), weight[ids])


def test_embedding_dropout_with_one_hot_input_drops_whole_columns():
    model = model_of(embed_dropout=0.5, input="onehot").train()
    ids = torch.arange(11).repeat(2, 4)
    x = model.embed(ids)
    kinds = set()
    for v in range(11):
        rows = x[ids == v]
        expected = F.one_hot(torch.tensor(v), 11).float()
        if (rows == 0).all():
            kinds.add("dropped")
        else:
            assert torch.equal(rows, (expected * 2).expand_as(rows))
            kinds.add("kept")
    assert kinds == {"dropped", "kept"}
    assert torch.equal(model.eval().embed(ids), F.one_hot(ids, 11).float())


def test_ar_and_tar_by_hand():
    h = torch.tensor([[[1.0, 2.0], [3.0, 5.0]]])  # [B=1, T=2, H=2]
    assert activation_regularisation(h).item() == pytest.approx((1 + 4 + 9 + 25) / 4)
    assert temporal_activation_regularisation(h).item() == pytest.approx(((3 - 1) ** 2 + (5 - 2) ** 2) / 2)
    assert temporal_activation_regularisation(h[:, :1]).item() == 0.0


def test_batch_loss_adds_exactly_the_penalties():
    model = model_of(layers=2).train()  # dropout 0: dropped == raw
    ids = torch.randint(0, 11, (3, 8))
    batch = Batch(ids[:, :-1], ids[:, 1:], carries_state=True)
    logits, _, (raw, dropped) = model(batch.inputs, None, return_hidden=True)
    assert raw is dropped
    ce = F.cross_entropy(logits.reshape(-1, 11), batch.targets.reshape(-1))
    expected = ce + 2.0 * raw.pow(2).mean() + 3.0 * (raw[:, 1:] - raw[:, :-1]).pow(2).mean()
    result = batch_loss(model, batch, None, CPU, TrainConfig(ar=2.0, tar=3.0))
    torch.testing.assert_close(result.loss, expected)
    torch.testing.assert_close(result.cross_entropy, ce)
    assert result.loss.item() > result.cross_entropy.item()
    plain = batch_loss(model, batch, None, CPU, TrainConfig())
    assert plain.loss is plain.cross_entropy


def test_ar_tar_need_the_sequence_objective():
    check_regularisers(TrainConfig(ar=1.0))
    with pytest.raises(ConfigError, match="--ar needs --objective sequence"):
        check_regularisers(TrainConfig(ar=1.0, objective="window"))
    with pytest.raises(ConfigError, match="--tar"):
        check_regularisers(TrainConfig(tar=1.0, objective="prefixes"))
    with pytest.raises(ValueError, match="return_hidden"):
        model_of(output="last")(torch.randint(0, 11, (2, 4)), return_hidden=True)


def test_defaults_give_bitwise_the_old_step():
    """All new settings neutral: the loss and gradients are the old formula's, bit for bit."""
    model = model_of(layers=2, dropout=0.4).train()
    ids = torch.randint(0, 11, (4, 10))
    batch = Batch(ids[:, :-1], ids[:, 1:], carries_state=True)
    torch.manual_seed(5)
    result = batch_loss(model, batch, None, CPU, TrainConfig())
    result.loss.backward()
    ours = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch.manual_seed(5)  # the old forward, written out
    x = F.dropout(model.embedding(batch.inputs), 0.4)
    out, _ = model.rnn(x, None)
    logits = model.decoder(F.dropout(out, 0.4))
    old = F.cross_entropy(logits.float().reshape(-1, 11), batch.targets.reshape(-1))
    old.backward()
    assert torch.equal(result.loss, old)
    assert all(torch.equal(a, p.grad) for a, p in zip(ours, model.parameters()))
