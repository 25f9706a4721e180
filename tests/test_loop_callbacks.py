"""The training loop as another user than the language model meets it (the forecaster does): its own
batch loss, no validation, no model directory."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from rnnlab.config import TrainConfig
from rnnlab.errors import TrainingDivergedError
from rnnlab.training import checkpoint as ckpt
from rnnlab.training import loop


@dataclass
class Pairs:
    x: torch.Tensor
    carries_state = False

    @property
    def targets(self) -> torch.Tensor:
        return self.x


class Batches:
    def __init__(self, steps: int):
        self.steps = steps

    def __len__(self) -> int:
        return self.steps

    def epoch(self, epoch: int, start_step: int = 0):
        generator = torch.Generator().manual_seed(epoch)
        for _ in range(start_step, self.steps):
            yield Pairs(torch.randn(8, 1, generator=generator))


def regression_loss(net, batch, _carry, _device, _config) -> loop.BatchLoss:
    loss = (net(batch.x) - 3 * batch.x).pow(2).mean()
    return loop.BatchLoss(loss, None, None, loss)


def run(model_dir, evaluate, epochs=4, on_eval=None):
    torch.manual_seed(0)
    net = torch.nn.Linear(1, 1)
    config = TrainConfig(epochs=epochs, lr=0.05, warmup_steps=0, patience=None, sample_every=0)
    hooks = loop.Hooks(progress=False, on_eval=None if on_eval is None else lambda record: on_eval(net, record))
    result = loop.train(net, Batches(3), evaluate, config, model_dir, torch.device("cpu"), hooks=hooks,
                        loss_fn=regression_loss)
    return net, result


def test_without_a_directory_nothing_is_written_and_the_model_holds_the_best_weights(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scripted = iter([3.0, 1.0, 2.0, 4.0])  # validation losses: the second evaluation is the best
    snapshots = []
    net, result = run(None, lambda: {"loss": next(scripted)},
                      on_eval=lambda net, record: snapshots.append(net.weight.detach().clone()))
    assert list(tmp_path.iterdir()) == []
    assert [r["val_loss"] for r in result.history] == [3.0, 1.0, 2.0, 4.0]
    assert result.best["step"] == 6 and [r["best"] for r in result.history] == [True, True, False, False]
    assert torch.equal(net.weight, snapshots[1]) and not torch.equal(net.weight, snapshots[-1])
    assert result.history[0]["train_accuracy"] is None  # a loss with no argmax has no accuracy


def test_without_validation_the_last_weights_are_kept_and_saved(tmp_path):
    net, result = run(tmp_path, None)
    assert [r["epoch"] for r in result.history] == [1.0, 2.0, 3.0, 4.0]
    assert all("val_loss" not in r and r["train_loss"] > 0 for r in result.history) and result.best is None
    again = torch.nn.Linear(1, 1)
    ckpt.load_weights(tmp_path / ckpt.WEIGHTS, again)
    assert torch.equal(again.weight, net.weight)  # the last weights, the ones training ended on
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"] / 2  # and they learned


def test_a_resumed_run_whose_checkpoint_ends_an_epoch_repeats_no_evaluation(tmp_path):
    """The checkpoint at the last step of an epoch is written after that epoch's evaluation: resumed, the run
    starts the next epoch, with that evaluation in its early-stopping state, and logs nothing twice."""
    straight_net, straight = run(tmp_path / "a", lambda: {"loss": 1.0})

    class Crash(Exception):
        pass

    def crash(record):
        if record["epoch"] == 3.0:
            raise Crash

    torch.manual_seed(0)
    config = TrainConfig(epochs=4, lr=0.05, warmup_steps=0, patience=None, sample_every=0, checkpoint_every=3)
    net = torch.nn.Linear(1, 1)
    with pytest.raises(Crash):
        loop.train(net, Batches(3), lambda: {"loss": 1.0}, config, tmp_path / "b", torch.device("cpu"),
                   hooks=loop.Hooks(progress=False, on_eval=crash), loss_fn=regression_loss)
    net = torch.nn.Linear(1, 1)
    resumed = loop.train(net, Batches(3), lambda: {"loss": 1.0}, config, tmp_path / "b", torch.device("cpu"),
                         resume=True, hooks=loop.Hooks(progress=False), loss_fn=regression_loss)
    assert [r["step"] for r in ckpt.read_metrics(tmp_path / "b")] == [3, 6, 9, 12]
    assert torch.equal(net.weight, straight_net.weight) and resumed.step == straight.step == 12


def test_a_non_finite_validation_loss_is_divergence():
    with pytest.raises(TrainingDivergedError, match="diverged"):
        run(None, lambda: {"loss": float("nan")})
