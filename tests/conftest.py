import contextlib
import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

# A small seeded budget for every property test ("ci", the default); `--hypothesis-profile long` searches more.
settings.register_profile("ci", max_examples=12, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("long", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile("ci")


@pytest.fixture
def shared_data() -> Path:
    """The corpora shipped beside the project (../shared/data from the repository root), read-only."""
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def jungle_book_split():
    """The benchmarks' split of the Jungle Book (benchmarks/_common.py: a benchmark convention, not the
    library's)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "_common.py"
    spec = importlib.util.spec_from_file_location("benchmarks_common", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.jungle_book_split
TINY = dict(hidden="48", layers="1", embedding="16", seq_len="32", batch_size="8")


def tiny_train_args(corpus, out, *extra: str) -> list[str]:
    """CLI arguments for a small, fast char model (a few seconds on one core)."""
    return ["train", str(corpus), "-o", str(out), "--hidden", "48", "--layers", "1", "--embedding", "16",
            "--seq-len", "32", "--batch-size", "8", "--no-progress", "--sample-every", "0", *extra]


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    """The first 30,000 characters of the Jungle Book (Gutenberg header included, as a user's file would)."""
    path = tmp_path_factory.mktemp("corpus") / "small.txt"
    path.write_bytes((SHARED_DATA / "jungle-book.txt").read_bytes()[:30_000])
    return path


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, small_corpus) -> Path:
    """A tiny char model trained once for the whole session."""
    from rnnlab.cli import main

    out = tmp_path_factory.mktemp("models") / "tiny"
    assert main(tiny_train_args(small_corpus, out, "--epochs", "2", "--seed", "0")) == 0
    return out


@contextlib.contextmanager
def single_thread():
    """Two cores, one often busy: a second torch thread only slows tiny models down."""
    before, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        if env is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = env


def _tiny_model(tmp_path_factory, level: str) -> Path:
    """A tiny model on 20,000 characters of the Jungle Book, trained once per session (shared by files)."""
    import rnnlab
    from rnnlab.data.corpus import read_corpus

    base = tmp_path_factory.getbasetemp()
    out = base / f"tiny-{level}-model"
    if not (out / "summary.json").is_file():
        text = base / "jungle-20k.txt"
        text.write_text(read_corpus(SHARED_DATA / "jungle-book.txt")[:20_000], encoding="utf-8")
        with single_thread():
            rnnlab.train(text, out, overwrite=True, level=level, hidden_size=48, embedding_size=16,
                         seq_len=64, batch_size=16, max_steps=40, epochs=None, lr=1e-2, warmup_steps=5,
                         sample_every=0, seed=0, progress=False)
    return out


@pytest.fixture(scope="session")
def char_model_dir(tmp_path_factory) -> Path:
    return _tiny_model(tmp_path_factory, "char")


@pytest.fixture(scope="session")
def word_model_dir(tmp_path_factory) -> Path:
    return _tiny_model(tmp_path_factory, "word")


def sigint_as_a_terminal_sends_it() -> None:
    """preexec_fn for children that a test interrupts with SIGINT: a suite started in the background of a
    non-interactive shell inherits SIGINT ignored, and rnnlab (like nohup'd programs) keeps it ignored."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
