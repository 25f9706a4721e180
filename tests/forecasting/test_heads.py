from statistics import NormalDist

import pytest
import torch

from rnnlab.forecasting import heads


def test_pinball_loss_by_hand():
    quantiles = torch.tensor([0.1, 0.5, 0.9])
    levels = torch.tensor([1.0, 2.0, 3.0]).view(1, 1, 1, 3)
    target = torch.tensor([2.5]).view(1, 1, 1)
    # errors 1.5, 0.5, -0.5 -> losses 0.1*1.5, 0.5*0.5, 0.1*0.5
    expected = (0.15 + 0.25 + 0.05) / 3
    assert heads.loss(levels, target, "quantile", quantiles).item() == pytest.approx(expected)


def test_gaussian_head_by_hand():
    raw = torch.tensor([2.0, 0.0]).view(1, 1, 1, 2)  # location 2, raw scale 0 -> softplus(0) + floor
    levels = heads.to_levels(raw, "gaussian", torch.zeros(1, 3, 1), ())
    scale = torch.nn.functional.softplus(torch.tensor(0.0)).item() + heads.SCALE_FLOOR
    assert levels[0, 0, 0].tolist() == pytest.approx([2.0, scale])
    q = heads.to_quantiles(levels, "gaussian", (0.1, 0.5, 0.9))
    z = NormalDist().inv_cdf(0.9)
    assert q[0, 0, 0].tolist() == pytest.approx([2 - z * scale, 2.0, 2 + z * scale], rel=1e-5)
    nll = heads.loss(levels, torch.tensor([[[2.0]]]), "gaussian", torch.tensor([]))
    assert nll.item() == pytest.approx(torch.log(torch.tensor(scale)).item(), rel=1e-5)


def test_gaussian_head_integrates_only_the_location():
    raw = torch.tensor([[1.0, 0.0], [1.0, 0.0]]).view(1, 2, 1, 2)
    history = torch.tensor([5.0, 7.0]).view(1, 2, 1)
    levels = heads.to_levels(raw, "gaussian", history, (1,))
    assert levels[0, :, 0, 0].tolist() == [8.0, 9.0]
    assert levels[0, 0, 0, 1] == levels[0, 1, 0, 1]


def test_quantile_sampling_inverts_the_piecewise_linear_quantile_function():
    generator = torch.Generator().manual_seed(0)
    levels = torch.tensor([0.0, 10.0, 20.0]).view(1, 1, 1, 3).expand(20000, 1, 1, 3)
    draws = heads.sample(levels, "quantile", (0.1, 0.5, 0.9), generator)
    assert draws.shape == (20000, 1, 1)
    assert draws.min().item() == 0.0 and draws.max().item() == 20.0  # clamped to the outermost quantiles
    assert (draws <= 10.0).float().mean().item() == pytest.approx(0.5, abs=0.02)
    assert (draws <= 5.0).float().mean().item() == pytest.approx(0.3, abs=0.02)  # halfway from 0.1 to 0.5
