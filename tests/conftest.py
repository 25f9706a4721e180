from pathlib import Path

import pytest


@pytest.fixture
def shared_data() -> Path:
    """The corpora shipped beside the project (../shared/data from the repository root), read-only."""
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
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
