"""Writes that fail: a really full disk, safetensors' own error type, an unwritable directory, the umask.

Each is met as the user meets it: the real command in a subprocess, which must print one line and exit 2,
leave the previous files as they were and no temp file behind. The full disk is a small tmpfs (this needs
root and permission to mount; without it the patched-writer test below still covers the error path); the
unwritable directory is written with an ordinary user's permissions (root's override dropped).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import tiny_train_args
from test_bad_input import ROOT, assert_one_line_error, run_cli

from rnnlab import _io
from rnnlab.cli import main


def _can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@contextmanager
def tmpfs(path: Path, size_kb: int):
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); the patched-writer test covers it")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> None:
    """Leave no free block on `disk`."""
    with open(disk / "filler", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.mark.skipif(not _can_mount(), reason="needs root to mount a tmpfs; the patched-writer test runs instead")
def test_a_really_full_disk_is_one_line_and_keeps_the_saved_model(small_corpus, tmp_path):
    with tmpfs(tmp_path / "disk", 4096) as disk:
        model = disk / "model"
        first = run_cli(*tiny_train_args(small_corpus, model, "--max-steps", "4", "--seed", "0"))
        assert first.returncode == 0, first.stderr
        before = files_of(model)
        fill(disk)
        # A resume that trains on must save new weights and training state: the disk refuses.
        result = run_cli("train", small_corpus, "-o", model, "--resume", "--max-steps", "8", "--no-progress")
        line = assert_one_line_error(result, "no space left on device")
        assert str(model) in line
        after = files_of(model)
        assert {name: after[name] for name in before} == before, "a file of the saved model changed"
        assert not [p for p in model.iterdir() if p.name.endswith(".tmp")], list(model.iterdir())
        # Room again: the run resumes from the checkpoint the full disk left intact.
        (disk / "filler").unlink()
        again = run_cli("train", small_corpus, "-o", model, "--resume", "--max-steps", "8", "--no-progress")
        assert again.returncode == 0, again.stderr


@pytest.mark.skipif(not _can_mount(), reason="needs root to mount a tmpfs; the patched-savefig test runs instead")
def test_a_full_disk_under_generate_output_and_plot_is_one_line(trained_model, tmp_path):
    with tmpfs(tmp_path / "disk", 256) as disk:
        fill(disk)
        assert_one_line_error(run_cli("plot", trained_model, "-o", disk / "history.png"),
                              "no space left on device")
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_a_plot_whose_write_hits_a_full_disk_is_one_line_and_leaves_nothing(trained_model, tmp_path,
                                                                           monkeypatch, capsys):
    """The full-disk plot test without a tmpfs: the figure's write fails as a full disk fails it."""
    import errno

    from matplotlib.figure import Figure

    def full_disk(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Figure, "savefig", full_disk)
    out = tmp_path / "plots"
    out.mkdir()
    code = main(["plot", str(trained_model), "-o", str(out / "history.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no space left on device" in err[0].lower(), err
    assert list(out.iterdir()) == []


def test_safetensors_own_error_while_saving_is_one_line(small_corpus, tmp_path, monkeypatch, capsys):
    """safetensors reports a full disk as SafetensorError, which is not an OSError."""
    import safetensors.torch
    from safetensors import SafetensorError

    model = tmp_path / "model"
    assert main(tiny_train_args(small_corpus, model, "--max-steps", "3", "--seed", "0")) == 0
    before = files_of(model)
    capsys.readouterr()

    def full_disk(*args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
                              "message: \"No space left on device\" })")

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    code = main(["train", str(small_corpus), "-o", str(model), "--resume", "--max-steps", "6", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "could not write" in err[0] and "No space left on device" in err[0], err[0]
    # The resume may record its new --max-steps in config.json; the saved weights and state are untouched.
    after = files_of(model)
    kept = [name for name in before if name.endswith(".safetensors")]
    assert len(kept) == 2 and all(after[name] == before[name] for name in kept)
    assert not [name for name in after if name.endswith(".tmp")]


def run_as_user(*args: str) -> subprocess.CompletedProcess:
    """The real command with an ordinary user's file permissions. As root, that is root without the two
    capabilities that bypass permission bits (so a 0555 directory refuses it as it refuses anyone)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, sys.executable, "-m", "rnnlab", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)


@pytest.fixture
def locked(tmp_path):
    """A directory nobody may write into."""
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("needs setpriv to drop root's permission override")
    directory = tmp_path / "locked"
    directory.mkdir()
    directory.chmod(0o555)
    yield directory
    directory.chmod(0o755)


@pytest.mark.parametrize("command", ["train", "plot", "forecast-predict", "forecast-plot"])
def test_an_unwritable_directory_is_one_line(small_corpus, trained_model, tmp_path, locked, command):
    if command == "train":
        argv = tiny_train_args(small_corpus, locked / "model", "--max-steps", "2")
    elif command == "plot":
        argv = ["plot", trained_model, "-o", locked / "history.png"]
    else:
        forecaster = tmp_path / "naive"
        trained = run_cli("forecast", "train", "sunspots", "-o", forecaster, "--model", "naive", "--horizon", "5")
        assert trained.returncode == 0, trained.stderr
        flag = "-o" if command == "forecast-predict" else "--plot"
        argv = ["forecast", "predict", forecaster, flag, locked / ("fc.csv" if flag == "-o" else "fc.png")]
    line = assert_one_line_error(run_as_user(*argv), str(locked))
    assert "permission denied" in line.lower(), line
    assert list(locked.iterdir()) == []


@pytest.mark.parametrize("command", ["train", "plot"])
def test_a_refused_write_is_one_line_without_setpriv(small_corpus, trained_model, tmp_path, monkeypatch, capsys,
                                                     command):
    """The unwritable-directory test where root's override cannot be dropped: creating a directory or a
    file under `locked` fails as the kernel fails it for a 0555 directory (EACCES)."""
    import errno
    import tempfile

    locked = tmp_path / "locked"
    locked.mkdir()

    def refused(path) -> None:
        if Path(path).resolve().is_relative_to(locked):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    real_mkdir, real_mkstemp = os.mkdir, tempfile.mkstemp
    monkeypatch.setattr(os, "mkdir", lambda path, *a, **k: refused(path) or real_mkdir(path, *a, **k))
    monkeypatch.setattr(tempfile, "mkstemp",
                        lambda *a, dir=None, **k: refused(dir or ".") or real_mkstemp(*a, dir=dir, **k))
    argv = tiny_train_args(small_corpus, locked / "model", "--max-steps", "2") if command == "train" else \
        ["plot", trained_model, "-o", locked / "history.png"]
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(locked) in err[0] and "permission denied" in err[0].lower(), err
    assert list(locked.iterdir()) == []


@pytest.mark.parametrize("umask", [0o027, 0o002])
def test_saved_files_keep_the_users_umask(small_corpus, tmp_path, umask):
    model = tmp_path / "model"
    code = (f"import os, sys; os.umask({umask}); from rnnlab.cli import main; "
            f"sys.exit(main({[str(a) for a in tiny_train_args(small_corpus, model, '--max-steps', '2')]!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in model.iterdir() if p.is_file()}
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(modes)
    assert set(modes.values()) == {0o666 & ~umask}, {name: oct(mode) for name, mode in modes.items()}


def test_reading_the_umask_does_not_change_it(monkeypatch):
    def no_umask(mask):
        raise AssertionError("os.umask changes the umask of every thread")

    before = os.umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", no_umask)
        assert _io._umask() == 0o027
    finally:
        monkeypatch.undo()
        os.umask(before)
