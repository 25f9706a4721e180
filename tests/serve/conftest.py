"""A live `rnnlab serve` on a free loopback port, serving the session's tiny char and word models."""

import pytest

from .live import running_server


@pytest.fixture(scope="session")
def server(char_model_dir, word_model_dir):
    """The URL of a server with models "char" and "word" (small limits, so tests can reach them)."""
    with running_server("--model", f"char={char_model_dir}", "--model", f"word={word_model_dir}",
                        "--max-batch", "8", "--max-queue", "32", "--max-tokens-limit", "100000",
                        "--max-prompt-chars", "2000") as (url, _lines):
        yield url

