"""Write a small seed corpus per atheris target into fuzz/seeds/<target>/ (valid inputs to mutate).

    python fuzz/make_seeds.py
    python fuzz/fuzz_sensorhub.py recording -max_total_time=300 fuzz/seeds/recording

Seeds are valid records and files, so the fuzzer starts past the magic, version and header checks.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from sensorhub.notification import Notification
from sensorhub.protocol import (
    SensorInfo,
    encode_control,
    encode_info,
    encode_packet_raw,
)
from sensorhub.protocol.control import (
    Ack,
    ControlErrorCode,
    ErrorReply,
    SetSampleRate,
    TimeSyncReply,
    TimeSyncRequest,
)
from sensorhub.recording import RecordingWriter

SEEDS = Path(__file__).resolve().parent / "seeds"


def _packet(seq: int, t_us: int, n: int, axes: int) -> bytes:
    raw = (np.arange(n * axes, dtype=np.int64).reshape(n, axes) * 97) % 4000 - 2000
    return encode_packet_raw(seq=seq, t_first_us=t_us, rate_code=3, range_code=1, raw=raw)


def main() -> None:
    out: dict[str, dict[str, bytes]] = {
        "data": {f"{n}x{a}": _packet(7, 123_456, n, a) for n, a in ((1, 6), (4, 6), (13, 9), (16, 9))},
        "control": {type(m).__name__: encode_control(m) for m in (
            SetSampleRate(3), TimeSyncRequest(5, 10**12), TimeSyncReply(5, 10**12, 4_000_000), Ack(1),
            ErrorReply(4, ControlErrorCode.UNKNOWN_RANGE_CODE))},
        "bulk": {"packets": b"".join(bytes([len(p)]) + p for p in (_packet(1, 0, 4, 6), _packet(2, 40_000, 4, 6), _packet(3, 0, 2, 9)))},
        "info": {"info": encode_info(SensorInfo(1, (1, 2, 3), "a1b2c3d4e5f6", 87, True, 3, 1))},
        "csv": {
            "six_axis": b"t,ax,ay,az,gx,gy,gz\n0.00,0.1,0.2,9.8,0.01,0.02,0.03\n0.01,0.1,0.2,9.8,0.01,0.02,0.03\n",
            "nine_axis": b"# comment\nt,ax,ay,az,gx,gy,gz,mx,my,mz\n0.0,0,0,9.8,0,0,0,20,0,-40\n0.01,0,0,9.8,0,0,0,20,0,-40\n",
        },
        "ingest": {},
    }
    # ingest seeds are fuzzer bytes, not notifications: any bytes will do as a start.
    out["ingest"]["zeros"] = bytes(64)
    out["ingest"]["ramp"] = bytes(range(200))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seed.shr"
        with RecordingWriter(path, {"drill": "seated_rotation", "side": "right", "source": "seed"},
                             background_flush=False) as w:
            w.add_sensor("P", segment="pelvis", rate_hz=100.0)
            w.add_sensor("T", segment="thigh", side="right", has_mag=True, rate_hz=100.0)
            for k in range(3):
                w.write_notification(Notification("P", 0.04 * k, _packet(k, 40_000 * k, 4, 6)))
                w.write_notification(Notification("T", 0.04 * k + 0.001, _packet(k, 40_000 * k, 2, 9)))
            w.write_mark(0.05, "drill_start", drill="seated_rotation")
            w.write_calibration({"side": "right"})
        out["recording"] = {"two_sensors": path.read_bytes()}
    for target, files in out.items():
        folder = SEEDS / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
    print(f"seeds written to {SEEDS}", file=sys.stderr)


if __name__ == "__main__":
    main()
