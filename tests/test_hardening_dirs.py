"""Model directories: --overwrite removes only rnnlab's own files, one run at a time holds a directory,
and metrics.jsonl grows by appending. The real command runs in a subprocess, as a user would meet it."""

from __future__ import annotations

import fcntl
import json
import os

from conftest import tiny_train_args
from test_bad_input import assert_one_line_error, run_cli

from rnnlab.training import checkpoint as ckpt
from rnnlab.training.modeldir import LOCK

FAST = ("--max-steps", "6", "--epochs", "1", "--eval-every", "3", "--seed", "0")


def _corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("The jungle is large and the cub is small; let him think and be still.\n" * 60)
    return path


def test_overwrite_refuses_a_folder_rnnlab_did_not_make(tmp_path):
    folder = tmp_path / "hf-model"
    folder.mkdir()
    config = json.dumps({"model_type": "gpt2", "n_layer": 12})
    (folder / "config.json").write_text(config)
    (folder / "notes.txt").write_text("mine")
    (folder / "model.safetensors").write_bytes(b"not rnnlab's")
    result = run_cli(*tiny_train_args(_corpus(tmp_path), folder, *FAST, "--overwrite"))
    assert_one_line_error(result, str(folder), "refusing to overwrite")
    assert (folder / "config.json").read_text() == config
    assert (folder / "notes.txt").read_text() == "mine"
    assert (folder / "model.safetensors").read_bytes() == b"not rnnlab's"


def test_overwrite_refuses_a_folder_without_config(tmp_path):
    folder = tmp_path / "stuff"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    assert_one_line_error(run_cli(*tiny_train_args(_corpus(tmp_path), folder, *FAST, "--overwrite")),
                          "refusing to overwrite")
    assert (folder / "notes.txt").read_text() == "mine"


def test_overwrite_replaces_rnnlab_files_and_keeps_the_users(tmp_path):
    corpus, out = _corpus(tmp_path), tmp_path / "model"
    first = run_cli(*tiny_train_args(corpus, out, *FAST))
    assert first.returncode == 0, first.stderr
    (out / "notes.txt").write_text("mine")
    old_metrics = (out / ckpt.METRICS).read_text()
    second = run_cli(*tiny_train_args(corpus, out, "--max-steps", "3", "--epochs", "1", "--eval-every", "3",
                                      "--seed", "1", "--overwrite"))
    assert second.returncode == 0, second.stderr
    assert (out / "notes.txt").read_text() == "mine"
    for name in (ckpt.CONFIG, ckpt.TOKENIZER, ckpt.WEIGHTS, ckpt.TRAINING_STATE, ckpt.METRICS, ckpt.SUMMARY):
        assert (out / name).is_file(), name
    new_metrics = (out / ckpt.METRICS).read_text()
    assert new_metrics != old_metrics and len(new_metrics.splitlines()) == 1
    assert json.loads((out / ckpt.CONFIG).read_text())["train"]["seed"] == 1


def test_a_second_run_fails_while_the_directory_is_locked(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    with open(out / LOCK, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write(f"{os.getpid()}\n")
        held.flush()
        result = run_cli(*tiny_train_args(_corpus(tmp_path), out, *FAST))
        assert_one_line_error(result, "in use by another rnnlab run", f"pid {os.getpid()}")
    assert [p.name for p in out.iterdir()] == [LOCK]
    # Once released, the directory trains normally (the lock file alone does not make it "not empty").
    result = run_cli(*tiny_train_args(_corpus(tmp_path), out, *FAST))
    assert result.returncode == 0, result.stderr


def test_forecast_overwrite_keeps_the_users_files_and_refuses_foreign_folders(tmp_path):
    tiny = ("--horizon", "3", "--epochs", "1", "--hidden", "8", "--no-progress")
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}')
    result = run_cli("forecast", "train", "air-passengers", "-o", folder, *tiny, "--overwrite")
    assert_one_line_error(result, "refusing to overwrite")
    assert (folder / "config.json").read_text() == '{"model_type": "bert"}'
    out = tmp_path / "fc"
    assert run_cli("forecast", "train", "air-passengers", "-o", out, *tiny).returncode == 0
    (out / "notes.txt").write_text("mine")
    result = run_cli("forecast", "train", "air-passengers", "-o", out, *tiny, "--overwrite")
    assert result.returncode == 0, result.stderr
    assert (out / "notes.txt").read_text() == "mine" and (out / "config.json").is_file()


def test_metrics_lines_are_appended_one_per_evaluation(tmp_path):
    out = tmp_path / "model"
    result = run_cli(*tiny_train_args(_corpus(tmp_path), out, *FAST))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (out / ckpt.METRICS).read_text().splitlines()]
    assert [r["step"] for r in records] == [3, 6]
    # Appending keeps the file (same inode) and adds exactly one line; a torn last line is fenced off.
    inode = os.stat(out / ckpt.METRICS).st_ino
    ckpt.append_metrics(out, {"step": 7, "kind": "step"})
    assert os.stat(out / ckpt.METRICS).st_ino == inode
    with open(out / ckpt.METRICS, "a") as fh:
        fh.write('{"step": 8, "ki')  # a crash mid-line
    ckpt.append_metrics(out, {"step": 9, "kind": "step"})
    assert [r["step"] for r in ckpt.read_metrics(out)] == [3, 6, 7, 9]
    ckpt.truncate_metrics(out, 6)
    assert [r["step"] for r in ckpt.read_metrics(out)] == [3, 6]
