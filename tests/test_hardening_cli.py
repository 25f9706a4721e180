"""Careless values of single flags, a reader that leaves early, and forecasting inputs that used to train
silently on garbage: each is a one-line error (exit 2) from the real command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import tiny_train_args
from test_bad_input import ROOT, assert_one_line_error, run_cli


@pytest.mark.parametrize("seed", ["99999999999999999999", "-1", str(2**63), "seven"])
def test_generate_refuses_a_seed_outside_the_one_range(trained_model, seed):
    assert_one_line_error(run_cli("generate", trained_model, "--seed", seed, "--length", "3"),
                          "--seed", "2**63 - 1")


def test_the_largest_seed_generates(trained_model):
    result = run_cli("generate", trained_model, "--seed", str(2**63 - 1), "--length", "3")
    assert result.returncode == 0, result.stderr


def test_train_refuses_a_huge_seed(small_corpus, tmp_path):
    out = tmp_path / "model"
    assert_one_line_error(run_cli(*tiny_train_args(small_corpus, out, "--seed", "99999999999999999999")),
                          "--seed")
    assert not out.exists()


def test_a_reader_that_leaves_early_gets_no_broken_pipe_message(trained_model):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    writer = subprocess.Popen([sys.executable, "-m", "rnnlab", "generate", str(trained_model), "--length",
                               "200000", "--seed", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, cwd=ROOT)
    assert writer.stdout.read(1)
    writer.stdout.close()  # what `| head -c1` does
    _, err = writer.communicate(timeout=120)
    assert err == b"", err.decode()
    assert writer.returncode == 0


@pytest.mark.parametrize("argv, needle", [
    (["backtest", "--model", "seasonal-naive", "air-passengers", "--horizon", "12", "--step", "0"], "--step"),
    (["backtest", "--model", "seasonal-naive", "air-passengers", "--horizon", "12", "--origins", "-2"],
     "--origins"),
    (["train", "air-passengers", "-o", "OUT", "--horizon", "3", "--hidden", "-8"], "--hidden"),
    (["train", "air-passengers", "-o", "OUT", "--horizon", "3", "--epochs", "0"], "--epochs"),
    (["train", "air-passengers", "-o", "OUT", "--horizon", "3", "--seed", "-1"], "--seed"),
])
def test_forecast_flags_that_must_be_positive(tmp_path, argv, needle):
    argv = [str(tmp_path / "m") if a == "OUT" else a for a in argv]
    assert_one_line_error(run_cli("forecast", *argv), needle)
    assert not (tmp_path / "m").exists()


def test_an_infinite_covariate_names_its_column_and_row(tmp_path):
    path = tmp_path / "series.csv"
    rows = ["date,sales,visits"] + [f"2020-{m:02d}-01,{10 + m},{'inf' if m == 7 else m}" for m in range(1, 13)]
    path.write_text("\n".join(rows) + "\n")
    result = run_cli("forecast", "train", path, "-o", tmp_path / "m", "--time", "date", "--target", "sales",
                     "--covariates", "visits", "--horizon", "2", "--epochs", "1", "--no-progress")
    assert_one_line_error(result, "visits", "infinite")
    assert not (tmp_path / "m").exists()


def test_a_diverged_forecaster_is_an_error_and_leaves_nothing_behind(tmp_path):
    out = tmp_path / "m"
    result = run_cli("forecast", "train", "air-passengers", "-o", out, "--horizon", "3", "--hidden", "8",
                     "--epochs", "3", "--lr", "1e12", "--clip", "0", "--no-progress")
    assert_one_line_error(result, "diverged", "--lr")
    assert not out.exists()


def test_an_output_path_under_a_regular_file_is_one_line(small_corpus, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("mine")
    assert_one_line_error(run_cli(*tiny_train_args(small_corpus, blocker / "model", "--max-steps", "2")),
                          "file.txt")
    assert blocker.read_text() == "mine"


def _peak_rss_mb_of(code: str) -> float:
    """Peak resident memory of a child Python running `code` (MiB)."""
    import resource

    script = code + "\nimport resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    del resource
    return int(done.stdout.split()[-1]) / 1024


def test_one_long_sample_streams_in_constant_memory(trained_model):
    """stream() keeps nothing: 400,000 characters cost no more memory than 10,000 (sample() keeps them:
    ~30 MB more, measured), and the text still arrives piece by piece."""
    code = (f"import rnnlab\nlm = rnnlab.load({str(trained_model)!r})\nn = [0]\n"
            "def count(piece): n[0] += len(piece)\n"
            "stopped = lm.stream('Mowgli', on_text=count, length={length}, seed=0)\n"
            "assert n[0] == {length} and stopped == 'length', (n, stopped)")
    short = _peak_rss_mb_of(code.format(length=10_000))
    long = _peak_rss_mb_of(code.format(length=400_000))
    assert long - short < 12, (short, long)


def test_a_generation_larger_than_memory_is_refused_before_it_allocates(trained_model):
    for args, needle in ((["--num-samples", "100000000"], "--num-samples 100000000"),
                         (["--num-samples", "2", "--length", "100000000000"], "--length 100000000000")):
        result = run_cli("generate", trained_model, *args)
        line = assert_one_line_error(result, needle, "GiB")
        assert "free" in line
