"""Hostile values thrown at every flag of `train`, `prepare`, `generate`, `evaluate`, `predict-next` and
`forecast train/predict`, through `main(argv)` in-process on tiny models. Whatever the value, the command
either succeeds (exit 0) or fails with exactly one line on stderr and exit 2; any other exception fails
the test. The examples are seeded and bounded (profile "ci", under a minute in all); run many more with

    .venv/bin/python -m pytest tests/test_fuzz_cli.py --hypothesis-profile long

Values that are valid but merely large (a length of a billion tokens, a network of a million units) are
left to the dedicated tests in test_hardening_cli.py: a valid request of that size is the user's to make.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import pytest
from conftest import single_thread, tiny_train_args
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.cli import main

# The profiles "ci" (the suite's default) and "long" are registered in conftest.py, where
# --hypothesis-profile finds them.

# Strings a careless or hostile user types where a number, a name or a fraction is expected.
HOSTILE_TEXT = st.sampled_from(["", " ", "-1", "0", "-0", "1e309", "-1e309", "nan", "inf", "-inf", "1.5",
                                "0x10", "1_000", "99999999999999999999", "-99999999999999999999", "2.5e-400",
                                "abc", "--", "-", "\x00", "é", "1,2", "0.0.0", "NaN", "None", "true"])
SMALL_NUMBERS = st.one_of(st.integers(-3, 40).map(str),
                          st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr))
HUGE_INTEGERS = st.sampled_from([str(2**63), str(2**64), str(-(2**63) - 1), str(10**30)])
VALUES = st.one_of(HOSTILE_TEXT, SMALL_NUMBERS, st.text(max_size=8))


def run(argv: list[str]) -> tuple[int, str]:
    """Exit code and stderr of `rnnlab ARGV`; an exception other than SystemExit propagates (a failure)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), single_thread():
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's own exit
            code = exc.code if isinstance(exc.code, int) else 2
    return code, err.getvalue()


def assert_handled(argv: list[str]) -> None:
    code, err = run(argv)
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1, (argv, err)
        assert "Traceback" not in err


GENERATE_FLAGS = ["--prompt", "--length", "--temperature", "--top-k", "--top-p", "--num-samples", "--seed",
                  "--stop", "--strategy", "--unknown", "--words"]
SIZE_FLAGS = {"--length", "--num-samples", "--words"}  # huge valid values are slow, not wrong


@given(flag=st.sampled_from(GENERATE_FLAGS), value=VALUES, huge=HUGE_INTEGERS, use_huge=st.booleans())
def test_generate_flags(char_model_dir, flag, value, huge, use_huge):
    if use_huge and flag not in SIZE_FLAGS:
        value = huge
    argv = ["generate", str(char_model_dir), "--length", "5", "--num-samples", "1", flag, value]
    assert_handled(argv)


TRAIN_FLAGS = ["--level", "--max-vocab", "--min-count", "--vocab-size", "--split", "--cell", "--layers",
               "--hidden", "--embedding", "--dropout", "--weight-drop", "--input", "--cell-impl", "--objective",
               "--seq-len", "--batch-size", "--window", "--stride", "--epochs", "--max-time", "--optimizer",
               "--lr", "--weight-decay", "--schedule", "--warmup", "--clip", "--ema", "--eval-every",
               "--patience", "--min-delta", "--seed", "--sample-every", "--checkpoint-every", "--device",
               "--encoding", "--errors"]
# Flags whose valid values size the network or the run: bounded here, so a valid value stays quick.
BOUNDED = {"--max-vocab", "--vocab-size", "--layers", "--hidden", "--embedding", "--seq-len", "--batch-size",
           "--window", "--stride", "--epochs", "--max-time", "--warmup", "--eval-every", "--patience",
           "--sample-every", "--checkpoint-every"}


@settings(max_examples=10)
@given(flag=st.sampled_from(TRAIN_FLAGS), value=VALUES, huge=HUGE_INTEGERS, use_huge=st.booleans())
def test_train_flags(small_corpus, flag, value, huge, use_huge):
    if use_huge and flag not in BOUNDED:
        value = huge
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model"
        assert_handled(tiny_train_args(small_corpus, out, "--max-steps", "2", "--eval-every", "2",
                                       "--epochs", "1", flag, value))


PREPARE_FLAGS = ["--level", "--max-vocab", "--min-count", "--vocab-size", "--split", "--encoding", "--errors",
                 "--val-file", "--test-file", "--tokenizer", "--data-dir"]


@settings(max_examples=10)
@given(flag=st.sampled_from(PREPARE_FLAGS), value=VALUES, huge=HUGE_INTEGERS, use_huge=st.booleans())
def test_prepare_flags(small_corpus, flag, value, huge, use_huge):
    if use_huge and flag not in {"--max-vocab", "--vocab-size"}:
        value = huge
    with tempfile.TemporaryDirectory() as tmp:
        assert_handled(["prepare", str(small_corpus), "-o", str(Path(tmp) / "tokens"), flag, value])


@given(flag=st.sampled_from(["--dynamic-lr", "-k", "--unknown"]), value=VALUES)
def test_evaluate_and_predict_next_flags(char_model_dir, small_corpus, flag, value, tmp_path_factory):
    text = str(small_corpus)
    if flag == "--dynamic-lr":
        assert_handled(["evaluate", str(char_model_dir), text, "--dynamic", flag, value])
    else:
        assert_handled(["predict-next", str(char_model_dir), "Mowgli was", flag, value])


@given(text=st.text(max_size=40))
def test_prompts_and_contexts_of_any_unicode(char_model_dir, text):
    assert_handled(["generate", str(char_model_dir), "--prompt", text, "--length", "3"])
    assert_handled(["predict-next", str(char_model_dir), text, "-k", "3"])


@pytest.fixture(scope="module")
def series_csv(tmp_path_factory) -> Path:
    import math

    path = tmp_path_factory.mktemp("series") / "series.csv"
    rows = ["t,y"] + [f"{i},{10 + 3 * math.sin(i * 2 * math.pi / 12) + i * 0.05:.4f}" for i in range(120)]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def forecaster_dir(tmp_path_factory, series_csv) -> Path:
    out = tmp_path_factory.mktemp("forecaster") / "model"
    code, err = run(["forecast", "train", str(series_csv), "-o", str(out), "--horizon", "6", "--epochs", "2",
                     "--hidden", "8", "--ensemble", "1", "--no-progress", "--time", "t", "--target", "y"])
    assert code == 0, err
    return out


FORECAST_TRAIN_FLAGS = ["--horizon", "--intervals", "--lookback", "--cell", "--hidden", "--layers", "--dropout",
                        "--scaler", "--diff", "--head", "--ensemble", "--combine", "--epochs", "--batch-size",
                        "--lr", "--weight-decay", "--clip", "--patience", "--val-size", "--seed", "--samples",
                        "--checkpoint-every", "--device", "--threads", "--time", "--target", "--covariates",
                        "--fill", "--freq", "--season-length"]
FORECAST_BOUNDED = {"--lookback", "--hidden", "--layers", "--ensemble", "--epochs", "--batch-size", "--samples",
                    "--horizon", "--season-length", "--threads", "--val-size"}


@settings(max_examples=10)
@given(flag=st.sampled_from(FORECAST_TRAIN_FLAGS), value=VALUES, huge=HUGE_INTEGERS, use_huge=st.booleans())
def test_forecast_train_flags(series_csv, flag, value, huge, use_huge):
    if use_huge and flag not in FORECAST_BOUNDED:
        value = huge
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["forecast", "train", str(series_csv), "-o", str(Path(tmp) / "m"), "--horizon", "6",
                "--epochs", "1", "--hidden", "8", "--ensemble", "1", "--no-progress", "--time", "t",
                "--target", "y", flag, value]
        assert_handled(argv)


@given(flag=st.sampled_from(["--horizon", "--time", "--target", "--fill", "--freq", "--season-length"]),
       value=VALUES)
def test_forecast_predict_flags(forecaster_dir, series_csv, flag, value):
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["forecast", "predict", str(forecaster_dir), "--data", str(series_csv), "-o",
                str(Path(tmp) / "f.csv"), flag, value]
        assert_handled(argv)


def test_the_fuzzer_sees_a_traceback(monkeypatch, char_model_dir):
    """The harness itself: an exception that escapes main is not mistaken for a handled error."""
    import rnnlab.api

    def broken(*args, **kwargs):
        raise ValueError("not handled")

    monkeypatch.setattr(rnnlab.api, "load", broken)
    with pytest.raises(ValueError):
        run(["generate", str(char_model_dir), "--length", "3"])
