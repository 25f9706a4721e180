"""Data-parallel training through torchrun (gloo on the CPU): two ranks, one model, one writer."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import rnnlab

ROOT = Path(__file__).resolve().parents[1]

# `rnnlab train` as torchrun runs it, with the training loop spied on: each rank saves the weights it
# holds before and after the loop, so the test can compare ranks (only rank 0 writes the model).
SPY = '''
import os, sys
from safetensors.torch import save_file
from rnnlab import api, cli

def spied_loop(model, *args, **kwargs):
    before = {"before." + k: v.clone() for k, v in model.state_dict().items()}
    result = LOOP(model, *args, **kwargs)
    after = {"after." + k: v.clone() for k, v in model.state_dict().items()}
    save_file({**before, **after}, os.path.join(sys.argv[1], "rank%s.safetensors" % os.environ["RANK"]))
    return result

LOOP, api.run_loop = api.run_loop, spied_loop
sys.exit(cli.main(sys.argv[2:]))
'''


def _weights_before_and_after(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    saved = load_file(path)
    return {when: {k[len(when) + 1:]: v for k, v in saved.items() if k.startswith(when + ".")}
            for when in ("before", "after")}


def free_port() -> int:
    """A port nobody listens on now (the OS picks it), so parallel runs never collide."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("cell", ["lstm", "minlstm"])
def test_torchrun_two_ranks_train_one_model(tmp_path, small_corpus, cell):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    out, ranks = tmp_path / "ddp", tmp_path / "ranks"
    ranks.mkdir()
    spy = tmp_path / "spy.py"
    spy.write_text(SPY, encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [torchrun, "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
         str(spy), str(ranks), "train", str(small_corpus), "-o", str(out), "--hidden", "32", "--layers", "1",
         "--embedding", "8", "--cell", cell, "--seq-len", "16", "--batch-size", "4", "--max-steps", "30", "--eval-every", "10",
         "--no-progress", "--sample-every", "0"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    # Each rank trained on its own lanes (and its own dropout draws): only averaged gradients keep the
    # two copies equal, and they did move.
    rank0, rank1 = (_weights_before_and_after(ranks / f"rank{r}.safetensors") for r in (0, 1))
    assert rank0["after"].keys() == rank1["after"].keys()
    assert all(torch.equal(rank0["after"][k], rank1["after"][k]) for k in rank0["after"])
    assert not all(torch.equal(rank0["after"][k], rank0["before"][k]) for k in rank0["after"])
    # Rank 0 alone writes and reports: one line per evaluation, not one per rank.
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20, 30]
    assert result.stderr.count("step     10 |") == 1
    assert records[-1]["val_loss"] < records[0]["val_loss"]
    lm = rnnlab.load(out)
    assert lm.generate("The", length=5, seed=0).startswith("The")


# Small, dropout-free settings under which one process and N ranks compute the same steps (AR and TAR
# on, gradients clipped: both must average as the one process's do).
EQUAL_RUN = ["--hidden", "16", "--layers", "1", "--embedding", "8", "--seq-len", "16", "--dropout", "0",
             "--embed-dropout", "0", "--max-steps", "6", "--eval-every", "100", "--no-progress", "--sample-every", "0",
             "--seed", "3"]
OBJECTIVE_RUN = {"sequence": ["--ar", "2", "--tar", "1", "--clip", "0.5"],
                 "window": ["--objective", "window", "--window", "12", "--stride", "5"]}


def _spied_run(tmp_path: Path, name: str, launcher: list[str], corpus: Path, args: list[str]) -> dict:
    """Train under `launcher` with the spy; every rank's weights after the loop, by rank."""
    ranks = tmp_path / name
    ranks.mkdir()
    spy = tmp_path / "spy.py"
    spy.write_text(SPY, encoding="utf-8")
    # RANK for the spy's file name; without WORLD_SIZE rnnlab runs as a single process.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "RANK": "0"}
    env.pop("WORLD_SIZE", None)
    result = subprocess.run([*launcher, str(spy), str(ranks), "train", str(corpus), "-o", str(tmp_path / f"{name}.model"),
                             *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    return {int(p.stem[4:]): _weights_before_and_after(p)["after"] for p in ranks.glob("rank*.safetensors")}


@pytest.mark.parametrize("objective", ["sequence", "window"])
def test_two_ranks_of_batch_b_train_the_weights_one_process_of_batch_2b_does(tmp_path, small_corpus, objective):
    """The test that says DDP is right: rank r reads lanes r*B..(r+1)*B-1 of the one process's batch
    (batching.py) and DDP averages the ranks' gradients, so K steps give the same weights (fp32 rounding
    apart). It fails when wrap() returns None (no averaging) and with the old contiguous 1/N shards."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    args = EQUAL_RUN + OBJECTIVE_RUN[objective]
    ddp = _spied_run(tmp_path, "ddp", [torchrun, "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                                       "--master_port", str(free_port())], small_corpus, [*args, "--batch-size", "4"])
    one = _spied_run(tmp_path, "one", [sys.executable], small_corpus, [*args, "--batch-size", "8"])[0]
    assert sorted(ddp) == [0, 1] and ddp[0].keys() == one.keys()
    for rank in (0, 1):
        for name, weight in one.items():
            assert torch.allclose(ddp[rank][name], weight, rtol=0, atol=1e-5), \
                (rank, name, float((ddp[rank][name] - weight).abs().max()))


def test_a_resumed_ddp_run_ends_where_the_uninterrupted_one_does(tmp_path, small_corpus):
    """A checkpoint holds every rank's carried lanes and generator, so 3 steps + --resume to 6 under two
    ranks equal 6 steps straight, bit for bit, dropout on (each rank resumes its own masks)."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    args = ["--hidden", "16", "--layers", "2", "--embedding", "8", "--seq-len", "16", "--dropout", "0.3",
            "--eval-every", "100", "--no-progress", "--sample-every", "0", "--seed", "3", "--checkpoint-every", "1"]

    def run(launcher: list[str], out: Path, *extra: str) -> None:
        result = subprocess.run([*launcher, "-m", "rnnlab", "train", str(small_corpus), "-o", str(out), *args,
                                 *extra], capture_output=True, text=True, env=env, cwd=ROOT, timeout=240)
        assert result.returncode == 0, result.stderr[-2000:]

    def ranks() -> list[str]:
        return [torchrun, "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(free_port())]

    run(ranks(), tmp_path / "straight", "--batch-size", "4", "--max-steps", "6")
    run(ranks(), tmp_path / "resumed", "--batch-size", "4", "--max-steps", "3")
    run(ranks(), tmp_path / "resumed", "--batch-size", "4", "--resume", "--max-steps", "6")
    straight = load_file(tmp_path / "straight" / "training_state.safetensors")
    resumed = load_file(tmp_path / "resumed" / "training_state.safetensors")
    weights = [k for k in straight if k.startswith("model.")]
    assert weights and straight["carry.0"].shape[1] == 8  # both ranks' lanes, one process's layout
    for name in [*weights, "carry.0", "carry.1"]:
        assert torch.equal(straight[name], resumed[name]), name
