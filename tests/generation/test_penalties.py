"""Frequency and presence penalties: transforms that see the generated ids (as counts), by hand."""

import pytest
import torch

from rnnlab.errors import ConfigError
from rnnlab.generation.transforms import FrequencyPenalty, PresencePenalty, token_counts


def test_counts_are_how_often_each_row_generated_each_token():
    assert token_counts([[1, 1, 2], [], [0]], 3).tolist() == [[0, 2, 1], [0, 0, 0], [1, 0, 0]]


def test_frequency_penalty_grows_with_each_repeat_and_presence_does_not():
    logits = torch.tensor([[1.0, 1.0, 1.0]])
    counts = token_counts([[0, 0, 1]], 3)
    assert FrequencyPenalty(0.5)(logits, counts).tolist() == [[0.0, 0.5, 1.0]]
    assert PresencePenalty(0.5)(logits, counts).tolist() == [[0.5, 0.5, 1.0]]
    assert PresencePenalty(-1.0)(logits, counts).tolist() == [[2.0, 2.0, 1.0]]  # negative: encourages
    assert logits.tolist() == [[1.0, 1.0, 1.0]]  # the input is never modified


def test_a_penalty_turns_a_repeat_into_another_argmax():
    logits = torch.tensor([[2.0, 1.5]])  # token 0 is the likelier, and has come twice
    counts = token_counts([[0, 0]], 2)
    assert int(FrequencyPenalty(0.3)(logits, counts).argmax()) == 1  # 2 - 0.6 < 1.5
    assert int(PresencePenalty(0.3)(logits, counts).argmax()) == 0  # 2 - 0.3 > 1.5


@pytest.mark.parametrize("value", [2.5, -3, float("nan"), True, "1"])
def test_a_penalty_outside_openais_range_names_the_parameter(value):
    with pytest.raises(ConfigError, match="frequency_penalty must be a number from -2 to 2"):
        FrequencyPenalty(value)
    with pytest.raises(ConfigError, match="presence_penalty"):
        PresencePenalty(value)
