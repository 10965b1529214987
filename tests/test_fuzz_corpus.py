"""Replay the fuzz regression corpus (tests/fuzz_corpus/, see its README) through the fuzz checks.

Every file is an input that once failed; it must pass now. The folder picks the check, so a new
failing input only needs to be saved in the right folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fuzz_support import (
    check_control,
    check_csv_bytes,
    check_data_packet,
    check_info,
    check_ingest,
    check_recording_bytes,
    ingest_items_from_bytes,
)

CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"

CHECKS: dict[str, Callable[[bytes, Path], object]] = {
    "data": lambda data, tmp: check_data_packet(data),
    "control": lambda data, tmp: check_control(data),
    "info": lambda data, tmp: check_info(data),
    "ingest": lambda data, tmp: check_ingest(ingest_items_from_bytes(data)),
    "recording": lambda data, tmp: check_recording_bytes(data, tmp / "input.shr"),
    "csv": lambda data, tmp: check_csv_bytes(data, tmp / "input.csv"),
}

FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "README.md")


def test_corpus_is_not_empty_and_every_folder_has_a_check() -> None:
    assert len(FILES) >= 7
    assert {p.parent.name for p in FILES} <= set(CHECKS)


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_corpus_input_passes_its_check(path: Path, tmp_path: Path) -> None:
    CHECKS[path.parent.name](path.read_bytes(), tmp_path)
