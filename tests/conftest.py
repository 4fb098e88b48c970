from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "scenarios"


def _shared(name: str) -> Path:
    """A folder of shared scenarios (read in place, never copied); the test is skipped where absent."""
    path = SHARED / name
    if not path.is_dir():
        pytest.skip(f"shared {name} scenarios not found at {path}")
    return path


@pytest.fixture
def resco():
    """The shared RESCO scenarios."""
    return _shared("resco")


@pytest.fixture
def corpus():
    """The shared corpus of outside scenarios (sumo-rl networks, a Bologna district)."""
    return _shared("corpus")
