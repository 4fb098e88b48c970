from pathlib import Path

import pytest

RESCO = Path(__file__).resolve().parents[2] / "shared" / "scenarios" / "resco"


@pytest.fixture
def resco():
    """The shared RESCO scenarios (read in place, never copied); skipped where absent."""
    if not RESCO.is_dir():
        pytest.skip(f"shared RESCO scenarios not found at {RESCO}")
    return RESCO



CORPUS = Path(__file__).resolve().parents[2] / "shared" / "scenarios" / "corpus"


@pytest.fixture
def corpus():
    """The shared corpus of outside scenarios (read in place, never copied); skipped where absent."""
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    return CORPUS
