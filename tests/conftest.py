"""Shared test fixtures.

``../shared`` (beside the checkout) holds example sessions and real recordings that the tests read in
place; tests that need it skip with a clear reason when it is absent.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("SENSORHUB_SHARED_DIR", REPO_ROOT.parent / "shared"))
REPLAY_DATA = REPO_ROOT / "replay_data"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED_DIR / "examples").is_dir():
        pytest.skip(f"shared data not found at {SHARED_DIR} (set SENSORHUB_SHARED_DIR or place shared/ beside the checkout)")
    return SHARED_DIR


@pytest.fixture(scope="session")
def examples_dir(shared_dir: Path) -> Path:
    return shared_dir / "examples"


@pytest.fixture(scope="module")
def quiet_sensorhub_logs() -> Iterator[None]:
    """Raise the ``sensorhub`` logger to ERROR for one module (faults make ingest and calibration warn
    by design), and restore it afterwards: later modules (e.g. the security log checks) need the records."""
    logger = logging.getLogger("sensorhub")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(previous)
