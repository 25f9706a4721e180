"""--precision: fp32 runs fp32 everywhere; bf16 autocasts the forward's matrix products (cpu and cuda).

bf16 on a CPU needs oneDNN's bf16 kernels (AVX-512); elsewhere it is refused in one line (tested on every
CPU by pretending the kernels are missing). Autocast's own mechanics are tested on every CPU with the GRU
and Elman cells (their products autocast anywhere, emulated where bf16 is not native); oneDNN's fused
LSTM builds no bf16 primitive without the kernels, so its bf16 tests need them.
"""

import json

import pytest
import torch
from conftest import single_thread, tiny_train_args

from rnnlab.config import ModelConfig, TrainConfig
from rnnlab.data.batching import Batch
from rnnlab.models.rnn_lm import RNNLanguageModel
from rnnlab.training import loop
from rnnlab.training.loop import batch_loss

CPU = torch.device("cpu")
needs_bf16_kernels = pytest.mark.skipif(not loop.cpu_has_bf16_kernels(),
                                        reason="this CPU has no oneDNN bf16 kernels (AVX-512)")
CELLS = ["lstm", "gru", "rnn_tanh"]


def allow_bf16(monkeypatch, cell: str) -> None:
    """The refusal lifted, so autocast itself is exercised on any CPU (the fused LSTM: where it can be)."""
    if cell == "lstm" and not loop.cpu_has_bf16_kernels():
        pytest.skip("oneDNN's fused LSTM has no bf16 primitive on this CPU (no AVX-512)")
    monkeypatch.setattr(loop, "cpu_has_bf16_kernels", lambda: True)


def tiny(cell: str) -> RNNLanguageModel:
    torch.manual_seed(0)
    return RNNLanguageModel(ModelConfig(vocab_size=13, cell=cell, layers=2, hidden_size=32, embedding_size=16,
                                        dropout=0.0))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("precision,dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_logits_dtype_follows_precision(cell, precision, dtype, monkeypatch):
    if precision == "bf16":
        allow_bf16(monkeypatch, cell)
    model = tiny(cell).train()
    seen = []
    model.decoder.register_forward_hook(lambda _m, _a, out: seen.append(out.dtype))
    ids = torch.randint(0, 13, (4, 9))
    result = batch_loss(model, Batch(ids[:, :-1], ids[:, 1:]), None, CPU, TrainConfig(precision=precision))
    assert seen == [dtype]
    assert result.loss.dtype == torch.float32
    result.loss.backward()
    assert all(p.grad.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("cell", CELLS)
def test_bf16_training_decreases_the_loss(cell, monkeypatch):
    allow_bf16(monkeypatch, cell)
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


@needs_bf16_kernels
def test_cli_trains_in_bf16(tmp_path, small_corpus):
    from rnnlab.cli import main

    out = tmp_path / "bf16"
    with single_thread():
        assert main(tiny_train_args(small_corpus, out, "--precision", "bf16", "--max-steps", "5",
                                    "--eval-every", "5", "--layers", "2")) == 0
    assert (out / "config.json").exists()


def test_bf16_without_the_kernels_is_one_line_before_any_file(tmp_path, small_corpus, monkeypatch, capsys):
    from rnnlab.cli import main

    monkeypatch.setattr(loop, "cpu_has_bf16_kernels", lambda: False)
    out = tmp_path / "bf16"
    assert main(tiny_train_args(small_corpus, out, "--precision", "bf16", "--max-steps", "5")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no bfloat16 kernels" in err and "--precision fp32" in err
    assert not out.exists()
    with pytest.raises(Exception, match="no bfloat16 kernels"):
        batch_loss(tiny("lstm"), Batch(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long)),
                   None, CPU, TrainConfig(precision="bf16"))


def test_a_bf16_run_resumes_in_fp32(tmp_path, small_corpus, monkeypatch):
    """Precision may change on resume (as the device may): a bf16 run moved to a CPU without the kernels
    continues in fp32 instead of being stuck."""
    from rnnlab.cli import main

    out = tmp_path / "run"
    monkeypatch.setattr(loop, "cpu_has_bf16_kernels", lambda: True)
    monkeypatch.setattr(loop, "_autocast", lambda device, precision: torch.autocast("cpu", enabled=False))
    with single_thread():
        assert main(tiny_train_args(small_corpus, out, "--precision", "bf16", "--max-steps", "4",
                                    "--checkpoint-every", "2", "--eval-every", "2")) == 0
    monkeypatch.undo()
    monkeypatch.setattr(loop, "cpu_has_bf16_kernels", lambda: False)
    with single_thread():
        assert main(["train", str(small_corpus), "-o", str(out), "--resume", "--max-steps", "6"]) == 2
        assert main(["train", str(small_corpus), "-o", str(out), "--resume", "--max-steps", "6",
                     "--precision", "fp32"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 6
    assert json.loads((out / "config.json").read_text())["train"]["precision"] == "fp32"
