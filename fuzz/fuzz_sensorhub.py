"""Coverage-guided fuzzing of sensorhub's input parsers with atheris (libFuzzer for Python).

Run outside the test suite, one target at a time::

    pip install atheris
    python fuzz/fuzz_sensorhub.py data -runs=200000          # or: bulk, control, info, ingest, recording, csv
    python fuzz/make_seeds.py && mkdir -p /tmp/corpus_csv   # libFuzzer adds new inputs to the FIRST folder
    python fuzz/fuzz_sensorhub.py csv -max_total_time=300 /tmp/corpus_csv fuzz/seeds/csv

Every input goes through the same check the hypothesis tests use (tests/fuzz_support.py): only the
documented error families (ProtocolError, RecordingError, ImportFormatError) may escape the code
under test, and what it returns must be consistent. Anything else is reported by libFuzzer as a
crash and saved as ``crash-<sha1>`` in the working directory; put a minimised copy into
tests/fuzz_corpus/<target>/ (see its README) so it stays fixed.
"""

from __future__ import annotations

import atexit
import math
import shutil
import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

with atheris.instrument_imports(include=["sensorhub", "fuzz_support"]):
    import fuzz_support as checks
    import numpy as np

    from sensorhub.protocol import encode_packet_raw

_TMP = Path(tempfile.mkdtemp(prefix="sensorhub-atheris-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)


def _ingest_items(data: bytes) -> list[checks.IngestItem]:
    """Turn fuzzer bytes into notifications: valid packets with fuzzed headers, or raw payloads."""
    fdp = atheris.FuzzedDataProvider(data)
    items: list[checks.IngestItem] = []
    t = fdp.ConsumeFloatInRange(0.0, 1e6)
    while fdp.remaining_bytes() and len(items) < 200:
        sid = "ab"[fdp.ConsumeIntInRange(0, 1)]
        step = fdp.ConsumeIntInRange(0, 9)
        t = t + (fdp.ConsumeFloatInRange(-1.0, 10.0) if step == 0 else step * 0.01)
        if fdp.ConsumeIntInRange(0, 5) == 0:
            payload = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 60))
        else:
            n = fdp.ConsumeIntInRange(1, 16)
            axes = 9 if fdp.ConsumeBool() else 6
            raw = np.full((n, axes), fdp.ConsumeIntInRange(-32768, 32767), dtype=np.int64)
            payload = encode_packet_raw(
                seq=fdp.ConsumeIntInRange(0, 0xFFFF), t_first_us=fdp.ConsumeIntInRange(0, 0xFFFFFFFF),
                rate_code=fdp.ConsumeIntInRange(0, 6), range_code=fdp.ConsumeIntInRange(0, 5), raw=raw,
            )
        host = t if fdp.ConsumeIntInRange(0, 30) else fdp.PickValueInList([math.nan, math.inf, -1e308, 2e10])
        items.append((sid, host, payload))
    return items


def _payload_list(data: bytes) -> list[bytes]:
    """Fuzzer bytes as a list of payloads, some repeated (the bulk decoder groups equal lengths)."""
    fdp = atheris.FuzzedDataProvider(data)
    payloads: list[bytes] = []
    while fdp.remaining_bytes() and len(payloads) < 32:
        if payloads and fdp.ConsumeIntInRange(0, 3) == 0:
            payloads.append(payloads[fdp.ConsumeIntInRange(0, len(payloads) - 1)])
        else:
            payloads.append(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 120)))
    return payloads


TARGETS = {
    "data": checks.check_data_packet,
    "bulk": lambda data: checks.check_bulk_decoder(_payload_list(data)),
    "control": checks.check_control,
    "info": checks.check_info,
    "ingest": lambda data: checks.check_ingest(_ingest_items(data)),
    "recording": lambda data: checks.check_recording_bytes(data, _TMP / "input.shr"),
    "csv": lambda data: checks.check_csv_bytes(data, _TMP / "input.csv"),
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options] [corpus dirs]")
    target = TARGETS[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
