"""`--patch P`: the forecasting encoder reads its window P steps at a time (SegRNN)."""

from __future__ import annotations

import json

import pytest
import torch

from rnnlab.cli import main
from rnnlab.models.forecaster import ForecastNetwork

TINY = ["--horizon", "3", "--hidden", "4", "--epochs", "2", "--lookback", "12", "--quiet"]


def _network(patch: int, highway: int = 0) -> ForecastNetwork:
    torch.manual_seed(0)
    return ForecastNetwork(input_size=2, target_dim=1, horizon=3, outputs=1, hidden_size=5, patch=patch,
                           highway=highway).eval()


def test_the_encoder_steps_over_patches_of_consecutive_steps():
    network = _network(patch=4)
    seen = []
    network.encoder.register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
    inputs = torch.randn(2, 10, 2)  # 10 steps: two patches of 4, the oldest 2 steps dropped
    network(inputs, torch.zeros(2, 3, 0))
    (encoded_input,) = seen
    assert encoded_input.shape == (2, 2, 8)
    assert torch.equal(encoded_input[:, 0], inputs[:, 2:6].reshape(2, 8))  # steps 2..5, oldest first
    assert torch.equal(encoded_input[:, 1], inputs[:, 6:10].reshape(2, 8))


def test_only_the_steps_before_the_first_whole_patch_are_ignored():
    network = _network(patch=4)
    inputs = torch.randn(1, 10, 2)
    with torch.no_grad():
        base = network(inputs, torch.zeros(1, 3, 0))
        dropped, read = inputs.clone(), inputs.clone()
        dropped[:, :2] += 5.0
        read[:, 2] += 5.0
        assert torch.equal(network(dropped, torch.zeros(1, 3, 0)), base)
        assert not torch.allclose(network(read, torch.zeros(1, 3, 0)), base)


def test_the_highway_still_reads_every_step():
    network = _network(patch=4, highway=10)
    inputs = torch.randn(1, 10, 2)
    with torch.no_grad():
        base = network(inputs, torch.zeros(1, 3, 0))
        inputs[:, 0, 0] += 5.0  # outside the patches, inside the highway
        assert not torch.allclose(network(inputs, torch.zeros(1, 3, 0)), base)


def test_patch_one_is_the_step_by_step_encoder_bitwise():
    torch.manual_seed(0)
    plain = ForecastNetwork(input_size=2, target_dim=1, horizon=3, outputs=1, hidden_size=5).eval()
    inputs = torch.randn(2, 7, 2)
    with torch.no_grad():
        assert torch.equal(_network(patch=1)(inputs, torch.zeros(2, 3, 0)), plain(inputs, torch.zeros(2, 3, 0)))


def test_a_patched_model_trains_saves_and_predicts_through_the_command_line(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["forecast", "train", "air-passengers", "-o", str(out), "--patch", "4", *TINY]) == 0
    capsys.readouterr()
    assert json.loads((out / "config.json").read_text())["settings"]["patch"] == 4
    from rnnlab.forecasting.forecasters import load_forecaster

    assert load_forecaster(out).networks[0].patch == 4
    assert main(["forecast", "predict", str(out)]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 4  # header + 3 steps


@pytest.mark.parametrize("patch, words", [("13", "--patch 13 is longer than the 12 steps the encoder reads"),
                                          ("0", "--patch must be at least 1")])
def test_a_patch_that_does_not_fit_is_a_one_line_error(tmp_path, capsys, patch, words):
    try:
        code = main(["forecast", "train", "air-passengers", "-o", str(tmp_path / "m"), "--patch", patch, *TINY])
    except SystemExit as stop:  # refused by the argument parser
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and words in err and err.count("\n") == 1
    assert not (tmp_path / "m").exists()
