"""Forecasting stands on the text side's core: the recurrent stack from models.cells.make_recurrent, the
model directory's format-version rule and the optimiser/RNG layout of training/checkpoint.py, and the
figure helper of `rnnlab plot`."""

from __future__ import annotations

import json

import pytest
import torch

from rnnlab import _io
from rnnlab.cli import main
from rnnlab.models.cells import MinRNN, make_recurrent
from rnnlab.models.forecaster import ForecastNetwork

TINY = ["--horizon", "3", "--hidden", "4", "--epochs", "2", "--lookback", "12", "--quiet"]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
def test_the_encoder_is_the_one_builders_bitwise(cell):
    torch.manual_seed(0)
    network = ForecastNetwork(input_size=3, target_dim=1, horizon=2, outputs=5, cell=cell, hidden_size=6, layers=2)
    torch.manual_seed(0)
    built = make_recurrent(cell, 3, 6, num_layers=2)
    assert type(network.encoder) is type(built)
    assert all(torch.equal(a, b) for a, b in zip(network.encoder.state_dict().values(), built.state_dict().values()))


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_min_cells_forecast_through_the_command_line(tmp_path, capsys, cell):
    out = tmp_path / "m"
    assert main(["forecast", "train", "air-passengers", "-o", str(out), "--cell", cell, *TINY]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == f"rnnlab_{cell}"
    from rnnlab.forecasting.forecasters import load_forecaster

    assert isinstance(load_forecaster(out).networks[0].encoder, MinRNN)
    assert main(["forecast", "predict", str(out)]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 4  # header + 3 steps


@pytest.fixture()
def model_dir(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["forecast", "train", "air-passengers", "-o", str(out), *TINY, "--checkpoint-every", "1"]) == 0
    capsys.readouterr()
    return out


def test_a_forecast_model_directory_follows_the_one_format_version_rule(model_dir, capsys):
    config = json.loads((model_dir / "config.json").read_text())
    config["format_version"] = 2
    (model_dir / "config.json").write_text(json.dumps(config))
    assert main(["forecast", "predict", str(model_dir)]) == 2
    assert "was written by a newer rnnlab (format 2; this one reads up to 1)" in capsys.readouterr().err
    del config["format_version"]  # the first files carried none: still read, as language models are
    (model_dir / "config.json").write_text(json.dumps(config))
    assert main(["forecast", "predict", str(model_dir)]) == 0


def test_an_interrupted_forecast_is_a_checkpoint_of_the_shared_training_loop(tmp_path):
    import numpy as np

    from rnnlab.config import TrainConfig
    from rnnlab.forecasting import RNNForecaster, from_array
    from rnnlab.training import checkpoint as ckpt
    from rnnlab.training.optim import make_optimizer

    class Crash(Exception):
        pass

    def crash(record):
        if record["epoch"] == 2:
            raise Crash

    series = from_array(np.sin(np.arange(60) / 3))
    with pytest.raises(Crash):
        RNNForecaster(horizon=3, lookback=8, hidden_size=4, epochs=4, checkpoint_every=1).fit(
            series, directory=tmp_path / "m", callback=crash)
    state = tmp_path / "m" / "member-0" / ckpt.TRAINING_STATE
    # The text side's reader restores it into a fresh network and optimiser: weights, every optimiser slot
    # and the generator, bit for bit (the network's input is the one series column; the head emits the
    # median and four interval ends).
    fresh = ForecastNetwork(input_size=1, target_dim=1, horizon=3, outputs=5, hidden_size=4)
    optimizer = make_optimizer(fresh.parameters(), TrainConfig())
    meta, carry, _ = ckpt.load_training_state(state, fresh, optimizer, torch.device("cpu"))
    assert carry is None and meta["epoch"] == 1 and not meta["finished"]  # saved after the first epoch
    tensors = _io.load_tensors(state)
    again, _ = ckpt.optimizer_tensors(optimizer)
    saved = {k: v for k, v in tensors.items() if k.startswith("optim.")}
    assert saved and saved.keys() == again.keys() and all(torch.equal(saved[k], again[k]) for k in saved)
    assert all(torch.equal(tensors[f"model.{k}"], v) for k, v in fresh.state_dict().items())
    assert torch.equal(torch.get_rng_state(), tensors["rng.torch"])
    lines = (tmp_path / "m" / "member-0" / ckpt.METRICS).read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1.0, 2.0]  # the loop's records, one per epoch


def test_the_window_order_of_an_epoch_depends_only_on_the_seed_and_the_epoch():
    """What makes a resumed member read the windows an uninterrupted one reads, mid-epoch included."""
    from rnnlab.forecasting.fit import WindowBatches
    from rnnlab.forecasting.windows import Windows

    n = 10
    windows = Windows(torch.arange(n, dtype=torch.float32)[:, None, None], torch.zeros(n, 1, 0),
                      torch.zeros(n, 1, 0), torch.zeros(n, 1, 0), torch.zeros(n, 1, 1))

    def order(batches, epoch, start=0):
        return [b.windows.history.flatten().tolist() for b in batches.epoch(epoch, start)]

    straight = WindowBatches(windows, 4, seed=7)
    epochs = [order(straight, e) for e in range(3)]
    assert len(straight) == 3 and all(sorted(sum(e, [])) == list(range(n)) for e in epochs)
    assert epochs[0] != epochs[1]
    assert order(WindowBatches(windows, 4, seed=7), 2) == epochs[2]  # a resumed run's first epoch
    assert order(WindowBatches(windows, 4, seed=7), 1, start=2) == epochs[1][2:]  # resumed mid-epoch
    assert order(straight, 1) == epochs[1]  # asked again, out of turn
    assert order(WindowBatches(windows, 4, seed=8), 0) != epochs[0]
