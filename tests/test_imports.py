"""What rnnlab imports, checked in fresh interpreters: the CLI starts light, and a text training run pulls in
neither the forecasting and serving stacks nor torch._dynamo (torch.optim.Optimizer's methods import it,
about 70 MB resident; rnnlab's optimisers are torch's functional kernels in a shell of their own, and are
checked here against torch.optim to the bit)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from rnnlab.config import TrainConfig
from rnnlab.training.optim import make_optimizer

# Nothing a text run needs: the forecasting and serving stacks and their dependencies, plotting, testing.
NOT_FOR_TEXT = ("pandas", "matplotlib", "fastapi", "uvicorn", "starlette", "statsforecast", "hypothesis",
                "rnnlab.forecasting", "rnnlab.serve.app", "rnnlab.serve.scheduler", "rnnlab.serve.protocol")
# Nor the compiler stack: torch._dynamo comes with sympy and parts of inductor.
NOT_FOR_TRAINING = NOT_FOR_TEXT + ("torch._dynamo", "torch._inductor", "sympy")
# Parsing a command needs none of the numerical stack (the heavy imports happen once a command runs).
NOT_FOR_PARSING = NOT_FOR_TEXT + ("torch", "numpy", "safetensors", "tokenizers", "tqdm", "rnnlab.api")


def imported_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code` (the names of sys.modules)."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Which of `names` (or a submodule of one) are in `modules`."""
    return sorted(n for n in names if any(m == n or m.startswith(n + ".") for m in modules))


def test_importing_the_cli_and_parsing_train_stays_light():
    modules = imported_after(
        "import rnnlab.cli\n"
        "rnnlab.cli.build_parser().parse_args(['train', 'jungle-book', '-o', 'out', '--max-time', '1'])")
    assert "rnnlab.cli" in modules
    assert loaded(modules, NOT_FOR_PARSING) == []


def test_a_training_run_with_resume_imports_nothing_it_does_not_need(tmp_path, small_corpus):
    out = tmp_path / "model"
    tiny = ["--hidden", "16", "--layers", "1", "--embedding", "8", "--seq-len", "32", "--batch-size", "8",
            "--no-progress"]
    # One epoch's end (evaluation, the per-epoch sample, a checkpoint), then a resume that loads the
    # optimiser's state and trains on; the train command as the CLI runs it.
    train = ["train", str(small_corpus), "-o", str(out), *tiny, "--split", "0.1,0.45,0.45"]
    modules = imported_after(
        "from rnnlab.cli import main\n"
        f"assert main({train + ['--epochs', '1']!r}) == 0\n"
        f"assert main({train + ['--epochs', '2', '--resume']!r}) == 0")
    assert (out / "training_state.safetensors").exists()
    assert "torch" in modules and "rnnlab.training.loop" in modules
    assert loaded(modules, NOT_FOR_TRAINING) == []


# -- the optimisers that keep torch._dynamo out: torch.optim's numbers and state_dict layout

def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Embedding(11, 6), torch.nn.LSTM(6, 8, batch_first=True))


def _train(model: torch.nn.Module, optimizer, steps: int, first: int = 0) -> None:
    """`steps` steps on seeded batches, the learning rate changed every step as the schedule does."""
    for i in range(first, first + steps):
        generator = torch.Generator().manual_seed(i)
        out, _ = model[1](model[0](torch.randint(0, 11, (3, 5), generator=generator)))
        optimizer.zero_grad(set_to_none=True)
        out.pow(2).sum().backward()
        for group in optimizer.param_groups:
            group["lr"] = 0.01 * (1 + i % 3)
        optimizer.step()


def _torch_optimizer(name: str, params, weight_decay: float):
    """What make_optimizer built before: torch.optim with the same two groups and settings."""
    params = list(params)
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return {"adamw": lambda: torch.optim.AdamW(groups, lr=0.01, foreach=True),
            "adam": lambda: torch.optim.Adam(groups, lr=0.01, foreach=True),
            "rmsprop": lambda: torch.optim.RMSprop(groups, lr=0.01, foreach=True),
            "sgd": lambda: torch.optim.SGD(groups, lr=0.01, momentum=0.9, foreach=True)}[name]()


def _assert_same_state(ours: dict, theirs: dict) -> None:
    assert ours["param_groups"] == theirs["param_groups"]
    assert ours["state"].keys() == theirs["state"].keys()
    for index, state in theirs["state"].items():
        assert ours["state"][index].keys() == state.keys()
        for name, value in state.items():
            assert torch.equal(ours["state"][index][name], value), (index, name)


@pytest.mark.parametrize("name", ["adamw", "adam", "rmsprop", "sgd"])
def test_optimisers_match_torch_optim_bitwise_and_share_its_state_dict(name):
    config = TrainConfig(optimizer=name, lr=0.01, weight_decay=0.1, epochs=1)
    ours_model, theirs_model = _model(), _model()
    ours = make_optimizer(ours_model.parameters(), config)
    theirs = _torch_optimizer(name, theirs_model.parameters(), 0.1)
    _train(ours_model, ours, 4)
    _train(theirs_model, theirs, 4)
    for a, b in zip(ours_model.parameters(), theirs_model.parameters()):
        assert torch.equal(a, b)
    _assert_same_state(ours.state_dict(), theirs.state_dict())


@pytest.mark.parametrize("name", ["adamw", "sgd"])
def test_a_torch_optim_state_resumes_in_ours_and_ours_in_torch_optim(name):
    """Training states written before the change (torch.optim's state_dict) continue bitwise, and back."""
    config = TrainConfig(optimizer=name, lr=0.01, weight_decay=0.1, epochs=1)
    reference_model = _model()
    reference = _torch_optimizer(name, reference_model.parameters(), 0.1)
    _train(reference_model, reference, 5)

    for first in ("torch", "ours"):
        model = _model()
        start = _torch_optimizer(name, model.parameters(), 0.1) if first == "torch" else \
            make_optimizer(model.parameters(), config)
        _train(model, start, 2)
        then = make_optimizer(model.parameters(), config) if first == "torch" else \
            _torch_optimizer(name, model.parameters(), 0.1)
        # Through JSON, as the training state keeps the groups (betas become a list).
        saved = start.state_dict()
        then.load_state_dict({"state": saved["state"], "param_groups": json.loads(json.dumps(saved["param_groups"]))})
        _train(model, then, 3, first=2)
        for a, b in zip(model.parameters(), reference_model.parameters()):
            assert torch.equal(a, b), first


def test_loading_a_state_for_other_parameter_groups_is_refused():
    config = TrainConfig(optimizer="adamw", lr=0.01, epochs=1)
    optimizer = make_optimizer(_model().parameters(), config)
    other = make_optimizer(torch.nn.Linear(3, 2).parameters(), config).state_dict()
    other["param_groups"] = other["param_groups"][:1]
    with pytest.raises(ValueError, match="parameter groups"):
        optimizer.load_state_dict(other)
