"""DropConnect on the recurrent weights: training-time only, one mask per forward, gradients reach them."""

from __future__ import annotations

import pytest
import torch

from rnnlab.config import ModelConfig
from rnnlab.errors import ConfigError
from rnnlab.models.rnn_lm import RNNLanguageModel


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_weight_drop_acts_in_training_only(cell, impl):
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=11, cell=cell, layers=2, hidden_size=12, embedding_size=6, dropout=0.0,
                         cell_impl=impl)
    plain = RNNLanguageModel(config)
    dropped = RNNLanguageModel(config.replace(weight_drop=0.5))
    dropped.load_state_dict(plain.state_dict())
    ids = torch.randint(0, 11, (3, 9))
    plain.eval()
    dropped.eval()
    assert torch.equal(plain(ids)[0], dropped(ids)[0])  # evaluation uses the whole weights
    dropped.train()
    torch.manual_seed(1)
    first = dropped(ids)[0]
    assert not torch.allclose(first, plain(ids)[0])
    assert not torch.allclose(first, dropped(ids)[0])  # a new mask each forward
    first.sum().backward()
    grads = [p.grad for name, p in dropped.rnn.named_parameters() if name.startswith("weight_hh")]
    assert grads and all(g is not None and (g == 0).any() and (g != 0).any() for g in grads)


def test_weight_drop_must_be_a_probability():
    with pytest.raises(ConfigError, match="--weight-drop"):
        ModelConfig(weight_drop=1.0)
