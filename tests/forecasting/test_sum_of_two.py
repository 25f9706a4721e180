"""The tutorial case: a SimpleRNN learns [t, t+1] -> 2t + 1 to under 1% relative error on unseen inputs."""

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sum_of_two.py"


def test_quick_form_reaches_under_one_percent():
    spec = importlib.util.spec_from_file_location("sum_of_two", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.run(quick=True)
    assert result["mean_relative_error"] < 0.01, result
    assert result["test_pairs"] == 500 and result["cell"] == "rnn"
