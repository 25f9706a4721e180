"""Bad input: one line on stderr, exit code 2, no traceback, nothing overwritten. Each case runs the real
command in a subprocess, as a user would meet it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_train_args

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "rnnlab", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def out(tmp_path) -> Path:
    return tmp_path / "model"


def test_missing_file(out):
    assert_one_line_error(run_cli(*tiny_train_args("/nonexistent/corpus.txt", out)), "corpus.txt")
    assert not out.exists()


def test_empty_file(tmp_path, out):
    corpus = tmp_path / "empty.txt"
    corpus.write_text("")
    assert_one_line_error(run_cli(*tiny_train_args(corpus, out)), "empty")
    assert not out.exists()


def test_binary_file(tmp_path, out):
    corpus = tmp_path / "data.bin"
    corpus.write_bytes(bytes(range(256)) * 10)
    assert_one_line_error(run_cli(*tiny_train_args(corpus, out)), "binary")


def test_non_utf8_names_the_byte_offset(tmp_path, out):
    corpus = tmp_path / "latin1.txt"
    corpus.write_bytes(b"The jungle is large and the cub is small. " * 20 + "caf\xe9".encode("latin-1"))
    line = assert_one_line_error(run_cli(*tiny_train_args(corpus, out)), "UTF-8")
    assert str(42 * 20 + 3) in line


def test_corpus_shorter_than_one_sequence(tmp_path, out):
    corpus = tmp_path / "short.txt"
    corpus.write_text("Mowgli ran through the jungle.\n" * 3)
    assert_one_line_error(run_cli(*tiny_train_args(corpus, out)), "too short", "--seq-len")
    assert not out.exists()


@pytest.mark.parametrize("flag,value,needle", [
    ("--hidden", "0", "--hidden"),
    ("--layers", "0", "--layers"),
    ("--dropout", "1.5", "--dropout"),
    ("--lr", "-1", "--lr"),
    ("--seq-len", "0", "--seq-len"),
    ("--weight-drop", "1", "--weight-drop"),
    ("--ema", "-0.5", "--ema"),
])
def test_nonsense_training_settings(small_corpus, out, flag, value, needle):
    assert_one_line_error(run_cli(*tiny_train_args(small_corpus, out, flag, value)), needle)
    assert not out.exists()


@pytest.mark.parametrize("args,needle", [
    (["--temperature", "-1"], "--temperature"),
    (["--top-p", "0"], "--top-p"),
    (["--top-p", "1.5"], "--top-p"),
    (["--top-k", "-3"], "--top-k"),
    (["--length", "-5"], "--length"),
    (["--num-samples", "0"], "--num-samples"),
])
def test_nonsense_sampling_settings(trained_model, args, needle):
    assert_one_line_error(run_cli("generate", trained_model, "--prompt", "The", *args), needle)


def test_model_directory_missing(tmp_path):
    assert_one_line_error(run_cli("generate", tmp_path / "nope"), "does not exist")
    assert_one_line_error(run_cli("evaluate", tmp_path / "nope", __file__), "does not exist")


def test_model_directory_without_config(trained_model, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(trained_model, broken)
    (broken / "config.json").unlink()
    assert_one_line_error(run_cli("generate", broken), "config.json")


def test_truncated_weights(trained_model, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(trained_model, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert_one_line_error(run_cli("generate", broken), "model.safetensors", "corrupt")


def test_config_and_weights_disagree(trained_model, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(trained_model, broken)
    config = json.loads((broken / "config.json").read_text())
    config["model"]["hidden_size"] = 40
    (broken / "config.json").write_text(json.dumps(config))
    assert_one_line_error(run_cli("generate", broken), "disagree")


def test_corrupt_config_json(trained_model, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(trained_model, broken)
    (broken / "config.json").write_text("{not json")
    assert_one_line_error(run_cli("info", broken), "config.json")


def test_existing_model_directory_is_not_overwritten(trained_model, small_corpus, tmp_path):
    existing = tmp_path / "existing"
    shutil.copytree(trained_model, existing)
    before = {p.relative_to(existing): p.read_bytes() for p in existing.rglob("*") if p.is_file()}
    assert_one_line_error(run_cli(*tiny_train_args(small_corpus, existing, "--max-steps", "2")),
                          "--overwrite", "--resume")
    assert {p.relative_to(existing): p.read_bytes() for p in existing.rglob("*") if p.is_file()} == before


def test_overwrite_refuses_a_folder_that_is_not_a_model(small_corpus, tmp_path):
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "thesis.txt").write_text("precious")
    assert_one_line_error(run_cli(*tiny_train_args(small_corpus, folder, "--overwrite", "--max-steps", "2")),
                          "not an rnnlab model directory")
    assert (folder / "thesis.txt").read_text() == "precious"


def test_resume_without_a_run(small_corpus, tmp_path):
    assert_one_line_error(run_cli("train", small_corpus, "-o", tmp_path / "none", "--resume"),
                          "cannot resume")


def test_bidirectional_with_sequence_objective_is_refused(small_corpus, out):
    assert_one_line_error(run_cli(*tiny_train_args(small_corpus, out, "--bidirectional")), "--bidirectional")


def test_unknown_flag_is_one_line(small_corpus, out):
    assert_one_line_error(run_cli(*tiny_train_args(small_corpus, out, "--hiden", "3")), "--hiden")


def test_full_disk_mid_save_keeps_the_previous_file(tmp_path, monkeypatch):
    """A write that fails part-way (ENOSPC) leaves the old file intact and no temp file behind."""
    import errno

    from rnnlab import _io
    from rnnlab.errors import RnnlabError

    target = tmp_path / "config.json"
    _io.write_json(target, {"version": 1})

    def fail(tmp: Path) -> None:
        tmp.write_bytes(b"{\"vers")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(RnnlabError, match="(?i)no space left"):
        _io.atomic_write(target, fail)
    assert json.loads(target.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_a_folder_with_a_latin1_file_is_refused_by_name_then_read_with_errors_replace(tmp_path, out):
    corpus = tmp_path / "books"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The wolf ran home. " * 200, encoding="utf-8")
    (corpus / "b.txt").write_bytes(b"en \xe9tat de partir. " * 100)
    tiny = ("--hidden", "8", "--layers", "1", "--embedding", "4", "--seq-len", "16", "--batch-size", "2",
            "--max-steps", "1", "--no-progress", "--sample-every", "0")
    assert_one_line_error(run_cli("train", corpus, "-o", out, *tiny), "b.txt", "0xe9", "byte offset 3",
                          "--errors replace")
    assert not out.exists()
    done = run_cli("train", corpus, "-o", out, *tiny, "--errors", "replace")
    assert done.returncode == 0, done.stderr
    data = json.loads((out / "config.json").read_text())["data"]
    assert (data["encoding"], data["errors"]) == ("utf-8", "replace")
    assert "\ufffd" in json.loads((out / "tokenizer.json").read_text())["chars"]
    assert_one_line_error(run_cli("train", corpus, "-o", tmp_path / "m2", *tiny, "--encoding", "klingon"),
                          "--encoding 'klingon'")


def test_a_line_break_in_a_typed_path_or_value_stays_one_escaped_line(small_corpus, tmp_path):
    """Messages quote what the user typed; a newline, NEL or U+2028 in it is shown escaped."""
    for name in ("a\nb.txt", "a\x85b.txt", "a\u2028b.txt"):
        line = assert_one_line_error(run_cli("prepare", small_corpus, "-o", tmp_path / "t", "--val-file", name),
                                     "no such file")
        assert name.encode("unicode_escape").decode("ascii") in line
    from rnnlab.data.corpus import check_encoding
    from rnnlab.errors import ConfigError

    with pytest.raises(ConfigError, match="--encoding"):  # a NUL cannot reach a subprocess's argv
        check_encoding("utf\x008", "strict")
