from pathlib import Path

import pytest


@pytest.fixture
def shared_data() -> Path:
    """The corpora shipped beside the project (../shared/data from the repository root), read-only."""
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"
