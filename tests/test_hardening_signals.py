"""SIGINT and SIGTERM stop a run at a step boundary with a checkpoint; the resumed run ends bitwise where
an uninterrupted one does. Stale temp files of a killed run are removed on the next start.

RNNLAB_INTERRUPT_REPEATS (default 3) sets how many random interruption points each signal is tried at.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import sigint_as_a_terminal_sends_it, tiny_train_args

import rnnlab
from rnnlab import _io
from rnnlab.errors import RnnlabError
from rnnlab.training import checkpoint as ckpt
from rnnlab.training.loop import remove_stale_temp_files

ROOT = Path(__file__).resolve().parents[1]
REPEATS = int(os.environ.get("RNNLAB_INTERRUPT_REPEATS", "3"))
# 3 epochs of ~97 steps; an evaluation (and a log line) every 10 steps, a checkpoint only every 1000, so
# the interrupted run's checkpoint is the one its signal made.
COMMON = ["--seed", "5", "--epochs", "3", "--dropout", "0.1", "--eval-every", "10", "--checkpoint-every",
          "1000", "--patience", "100"]
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


def _spawn(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "rnnlab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
                            preexec_fn=sigint_as_a_terminal_sends_it)


def _tensors(path: Path, prefix: str = "") -> dict[str, torch.Tensor]:
    return {k: v for k, v in _io.load_tensors(path).items() if k.startswith(prefix)}


def _state_meta(model_dir: Path) -> dict:
    return json.loads(_io.load_tensor_metadata(model_dir / ckpt.TRAINING_STATE)["state"])


def _assert_bitwise_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"tensors differ: {different}"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, small_corpus) -> Path:
    out = tmp_path_factory.mktemp("signals") / "full"
    proc = _spawn(tiny_train_args(small_corpus, out, *COMMON))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert json.loads((out / ckpt.SUMMARY).read_text())["stopped"] == "epochs"
    return out


def _interrupt_at(proc: subprocess.Popen, target_step: int, delay: float, sig: int) -> list[str]:
    """Read stderr until the evaluation line of `target_step`, wait `delay` s, send `sig`; stderr lines."""
    lines: list[str] = []
    reached = threading.Event()

    def reader() -> None:
        for line in proc.stderr:
            lines.append(line)
            match = re.match(r"step\s+(\d+) \|", line)
            if match and int(match.group(1)) >= target_step:
                reached.set()
        reached.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    assert reached.wait(timeout=300), "the run never reached its evaluation line"
    time.sleep(delay)
    proc.send_signal(sig)
    proc.wait(timeout=300)
    thread.join(timeout=60)
    proc.stdout.close()
    return lines


@pytest.mark.parametrize("point", range(REPEATS))
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_then_resume_matches_uninterrupted_run(tmp_path, small_corpus, uninterrupted, sig, point):
    total = _state_meta(uninterrupted)["step"]
    rng = random.Random(1000 * int(sig) + point)
    target = rng.randrange(10, total - 50, 10)  # an evaluation step well before the end
    delay = rng.uniform(0.0, 0.03)  # ~0-10 steps more, sometimes mid-evaluation, mid-backward
    out = tmp_path / "interrupted"
    proc = _spawn(tiny_train_args(small_corpus, out, *COMMON))
    lines = _interrupt_at(proc, target, delay, sig)
    err = "".join(lines)
    assert proc.returncode == EXIT_CODES[sig], err
    assert "Traceback" not in err
    assert f"interrupted by {signal.Signals(sig).name}" in err and "--resume" in lines[-1]
    # The run is unfinished, with a checkpoint at a step boundary.
    assert not (out / ckpt.SUMMARY).exists()
    meta = _state_meta(out)
    assert not meta["finished"] and target <= meta["step"] < total
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]

    resumed = _spawn(["train", str(small_corpus), "-o", str(out), "--resume", "--no-progress"])
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert _state_meta(out)["step"] == total
    _assert_bitwise_equal(_tensors(uninterrupted / ckpt.WEIGHTS), _tensors(out / ckpt.WEIGHTS))
    _assert_bitwise_equal(_tensors(uninterrupted / ckpt.TRAINING_STATE, "model."),
                          _tensors(out / ckpt.TRAINING_STATE, "model."))


def test_a_burst_of_signals_does_not_break_the_save(tmp_path, small_corpus, uninterrupted):
    total = _state_meta(uninterrupted)["step"]
    out = tmp_path / "interrupted"
    proc = _spawn(tiny_train_args(small_corpus, out, *COMMON))
    lines: list[str] = []
    for line in proc.stderr:
        lines.append(line)
        if re.match(r"step\s+120 \|", line):
            break
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGTERM, signal.SIGINT):
        proc.send_signal(sig)
        time.sleep(0.001)
    _, err = proc.communicate(timeout=300)
    err = "".join(lines) + err
    # The first signal decides; one that lands after the loop gave its handlers back may end the
    # process its own way, but never before the checkpoint is complete.
    assert proc.returncode in (143, 130, -signal.SIGTERM), err
    assert not (out / ckpt.SUMMARY).exists()
    meta = _state_meta(out)
    assert not meta["finished"] and 120 <= meta["step"] < total
    resumed = _spawn(["train", str(small_corpus), "-o", str(out), "--resume", "--no-progress"])
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    _assert_bitwise_equal(_tensors(uninterrupted / ckpt.WEIGHTS), _tensors(out / ckpt.WEIGHTS))


def test_sigterm_during_evaluation_in_process_saves_and_restores_handlers(tmp_path, small_corpus):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    sent = []

    def log(line: str) -> None:
        if line.startswith("step") and not sent:
            sent.append(line)
            os.kill(os.getpid(), signal.SIGTERM)  # arrives mid-run; the loop must finish the step

    out = tmp_path / "m"
    with pytest.raises(RnnlabError) as caught:
        rnnlab.train(small_corpus, out, hidden_size=48, embedding_size=16, seq_len=32, batch_size=8,
                     epochs=2, eval_every=5, checkpoint_every=1000, sample_every=0, seed=1, log=log,
                     progress=False)
    assert caught.value.exit_code == 143 and "SIGTERM" in caught.value.message
    assert {s: signal.getsignal(s) for s in before} == before
    meta = _state_meta(out)
    assert meta["step"] == 5 and not meta["finished"]


def test_stale_temp_files_are_removed_on_the_next_start(tmp_path, small_corpus):
    out = tmp_path / "m"
    proc = _spawn(tiny_train_args(small_corpus, out, "--max-steps", "6", "--eval-every", "3"))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    stale = [out / ".model.safetensors.k2j_9x0a.tmp", out / ".training_state.safetensors.abcdefgh.tmp",
             out / ".metrics.jsonl.0123_567.tmp"]
    kept = [out / "notes.tmp", out / ".hidden.tmp", out / "model.safetensors.abcdefgh.tmp",
            out / ".model.safetensors.abc.tmp", out / "my-data.txt"]
    for path in stale + kept:
        path.write_bytes(b"partial")
    (out / ".dir.abcdefgh.tmp").mkdir()  # not a file: left alone
    proc = _spawn(["train", str(small_corpus), "-o", str(out), "--resume", "--no-progress",
                   "--max-steps", "9"])
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert not any(p.exists() for p in stale)
    assert all(p.read_bytes() == b"partial" for p in kept)
    assert (out / ".dir.abcdefgh.tmp").is_dir()
    assert _state_meta(out)["step"] == 9


def test_remove_stale_temp_files_matches_only_rnnlab_temp_names(tmp_path):
    made = []
    # The names rnnlab._io.atomic_write really makes.
    for name in ("config.json", "model.safetensors"):
        target = tmp_path / name

        def write(tmp: Path) -> None:
            made.append(tmp.name)
            (tmp_path / f"copy-{len(made)}").write_text(tmp.name)
            raise KeyboardInterrupt  # atomic_write cleans up after itself; recreate the name below

        with pytest.raises(KeyboardInterrupt):
            _io.atomic_write(target, write)
    for name in made:
        (tmp_path / name).write_text("left by a killed run")
    (tmp_path / "user.tmp").write_text("mine")
    removed = remove_stale_temp_files(tmp_path)
    assert sorted(p.name for p in removed) == sorted(made)
    assert (tmp_path / "user.tmp").exists()
    assert remove_stale_temp_files(tmp_path / "missing") == []
