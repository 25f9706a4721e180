"""--precision: fp32 runs fp32 everywhere; bf16 autocasts the forward's matrix products (cpu and cuda)."""

import pytest
import torch
from conftest import single_thread, tiny_train_args

from rnnlab.config import ModelConfig, TrainConfig
from rnnlab.data.batching import Batch
from rnnlab.models.rnn_lm import RNNLanguageModel
from rnnlab.training.loop import batch_loss

CPU = torch.device("cpu")


def tiny(cell: str) -> RNNLanguageModel:
    torch.manual_seed(0)
    return RNNLanguageModel(ModelConfig(vocab_size=13, cell=cell, layers=2, hidden_size=32, embedding_size=16,
                                        dropout=0.0))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("precision,dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_logits_dtype_follows_precision(cell, precision, dtype):
    model = tiny(cell).train()
    seen = []
    model.decoder.register_forward_hook(lambda _m, _a, out: seen.append(out.dtype))
    ids = torch.randint(0, 13, (4, 9))
    result = batch_loss(model, Batch(ids[:, :-1], ids[:, 1:]), None, CPU, TrainConfig(precision=precision))
    assert seen == [dtype]
    assert result.loss.dtype == torch.float32
    result.loss.backward()
    assert all(p.grad.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_bf16_training_decreases_the_loss(cell):
    model = tiny(cell).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    ids = torch.arange(13).repeat(4, 2)[:, :17]  # a learnable cycle
    batch = Batch(ids[:, :-1], ids[:, 1:])
    config = TrainConfig(precision="bf16")
    losses = []
    with single_thread():
        for _ in range(30):
            loss = batch_loss(model, batch, None, CPU, config).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_cli_trains_in_bf16(tmp_path, small_corpus):
    from rnnlab.cli import main

    out = tmp_path / "bf16"
    with single_thread():
        assert main(tiny_train_args(small_corpus, out, "--precision", "bf16", "--max-steps", "5",
                                    "--eval-every", "5", "--layers", "2")) == 0
    assert (out / "config.json").exists()
