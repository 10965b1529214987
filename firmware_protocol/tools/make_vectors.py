"""Regenerate firmware_protocol/vectors.json, the golden vectors of wire protocol version 1.

This script is deliberately a second, independent reading of PROTOCOL.md: it builds every byte
with ``struct`` and explicit bit arithmetic and computes the SI values with plain floats, without
importing sensorhub. The Python codec (tests/test_protocol.py) and the C encoder
(tests/test_protocol_c.py) are both checked against its output, so neither can drift from the
specification without a test failing.

Usage: python firmware_protocol/tools/make_vectors.py [output.json]
"""

from __future__ import annotations

import json
import math
import random
import struct
import sys
from pathlib import Path
from typing import Any

G = 9.80665
RATES_HZ = {0: 25.0, 1: 50.0, 2: 60.0, 3: 100.0, 4: 120.0, 5: 200.0, 6: 400.0}
RANGES = {0: (2.0, 250.0), 1: (4.0, 500.0), 2: (8.0, 1000.0), 3: (16.0, 2000.0), 4: (4.0, 2000.0), 5: (8.0, 2000.0)}
MAG_UT_PER_LSB = 0.15
STATES = {0: "STREAMING", 1: "WARMING_UP", 2: "DEGRADED"}


def descriptor(n: int, has_mag: bool, clipping: bool, state: int, rate: int, rng: int, version: int = 1) -> int:
    return version << 14 | (n - 1) << 10 | int(has_mag) << 9 | int(clipping) << 8 | state << 6 | rate << 3 | rng


def data_vector(
    name: str, about: str, *, seq: int, t_first_us: int, rate_code: int, range_code: int,
    raw: list[list[int]], sensor_state: int = 0, clipping: bool = False,
) -> dict[str, Any]:
    n, axes = len(raw), len(raw[0])
    has_mag = axes == 9
    at_rail = any(v in (-32768, 32767) for row in raw for v in row)
    clip_out = clipping or at_rail
    flat = [v for row in raw for v in row]
    payload = struct.pack(
        f"<HHI{len(flat)}h",
        descriptor(n, has_mag, clip_out, sensor_state, rate_code, range_code), seq, t_first_us, *flat,
    )
    acc_g, gyr_dps = RANGES[range_code]
    rate = RATES_HZ[rate_code]
    return {
        "name": name,
        "description": about,
        "inputs": {
            "seq": seq, "t_first_us": t_first_us, "rate_code": rate_code, "range_code": range_code,
            "sensor_state": sensor_state, "clipping": clipping, "raw": raw,
        },
        "hex": payload.hex(),
        "length": len(payload),
        "decoded": {
            "version": 1, "seq": seq, "t_first_us": t_first_us, "n_samples": n, "has_mag": has_mag,
            "clipping": clip_out, "sensor_state": STATES[sensor_state], "rate_code": rate_code,
            "sample_rate_hz": rate, "sample_period_us": 1e6 / rate,
            "sample_times_us": [k * 1e6 / rate for k in range(n)],
            "range_code": range_code, "acc_range_g": acc_g, "gyr_range_dps": gyr_dps,
            "acc_m_s2": [[r / 32768 * acc_g * G for r in row[0:3]] for row in raw],
            "gyr_rad_s": [[r / 32768 * gyr_dps * math.pi / 180 for r in row[3:6]] for row in raw],
            "mag_uT": [[r * MAG_UT_PER_LSB for r in row[6:9]] for row in raw] if has_mag else None,
        },
    }


def data_vectors() -> dict[str, list[dict[str, Any]]]:
    rnd = random.Random(20261121)

    def rand_raw(n: int, axes: int, lim: int = 32000) -> list[list[int]]:
        return [[rnd.randint(-lim, lim) for _ in range(axes)] for _ in range(n)]

    # A plausible still sensor at ±4 g/±500 dps: +1 g on z is 8192 counts.
    still = [[12, -7, 8192, 3, -2, 1]]
    valid = [
        data_vector("one_sample_6axis_mtu23", "1 sample, 6-axis: 20 bytes, the default-MTU payload",
                    seq=0, t_first_us=0, rate_code=3, range_code=1, raw=still),
        data_vector("max_batch_6axis_mtu247", "16 samples (the count field's maximum), 6-axis: 200 bytes",
                    seq=1234, t_first_us=987_654_321, rate_code=5, range_code=3, raw=rand_raw(16, 6)),
        data_vector("max_batch_9axis_mtu247", "13 samples, 9-axis: 242 of 244 bytes at MTU 247",
                    seq=4321, t_first_us=123_456_789, rate_code=3, range_code=5, raw=rand_raw(13, 9)),
        data_vector("one_sample_9axis_mtu29", "1 sample, 9-axis: 26 bytes, needs MTU >= 29",
                    seq=77, t_first_us=5_000_000, rate_code=1, range_code=0,
                    raw=[[0, 0, 16384, 0, 0, 0, 133, -27, -280]]),
        data_vector("seq_65535", "last sequence number before the wrap",
                    seq=65535, t_first_us=42, rate_code=3, range_code=1, raw=still),
        data_vector("seq_0_after_wrap", "first sequence number after the wrap",
                    seq=0, t_first_us=10_042, rate_code=3, range_code=1, raw=still),
        data_vector("timestamp_2_32_minus_1", "t_first_us at its maximum, 4 samples at 100 Hz run past the wrap",
                    seq=9, t_first_us=2**32 - 1, rate_code=3, range_code=1, raw=rand_raw(4, 6, 3000)),
        data_vector("negative_full_scale", "every acc and gyro count at -32768: exactly -range, clipping set",
                    seq=500, t_first_us=1_000_000, rate_code=4, range_code=0,
                    raw=[[-32768] * 6, [-32768] * 6]),
        data_vector("positive_rail", "one gyro count at +32767 sets the clipping bit",
                    seq=501, t_first_us=1_016_667, rate_code=4, range_code=2,
                    raw=[[0, 0, 4096, 0, 0, 32767], [0, 0, 4096, 0, 0, 30000]]),
        data_vector("clipping_from_firmware", "counts below the rails, firmware sets clipping itself",
                    seq=502, t_first_us=1_033_333, rate_code=4, range_code=2, clipping=True,
                    raw=[[100, 200, 4096, -5, 5, 0]]),
        data_vector("warming_up_60hz", "sensor state 1 (warming up / not time-synced), 60 Hz period 16666.67 µs",
                    seq=3, t_first_us=250_000, rate_code=2, range_code=4, sensor_state=1, raw=rand_raw(3, 6)),
        data_vector("degraded_9axis", "sensor state 2 (degraded), 9-axis with clipping",
                    seq=65000, t_first_us=3_000_000_000, rate_code=0, range_code=3, sensor_state=2,
                    clipping=True, raw=rand_raw(2, 9)),
    ]
    for rate_code, rate_hz in RATES_HZ.items():
        rng = rate_code % len(RANGES)
        valid.append(data_vector(
            f"codes_rate{rate_code}_range{rng}", f"{rate_hz:g} Hz with range code {rng}",
            seq=100 + rate_code, t_first_us=rnd.randint(0, 2**32 - 1), rate_code=rate_code, range_code=rng,
            raw=rand_raw(1 + rate_code, 6),
        ))

    def hdr(desc: int, body_values: int, seq: int = 1, t: int = 2) -> str:
        return (struct.pack("<HHI", desc, seq, t) + bytes(2 * body_values)).hex()

    d1 = descriptor(1, False, False, 0, 3, 1)
    full16 = valid[1]["hex"]
    malformed = [
        ("empty", "", "TruncatedPacketError", "0 bytes"),
        ("one_byte", "08", "TruncatedPacketError", "1 bytes"),
        ("header_cut_7_bytes", hdr(d1, 0)[:14], "TruncatedPacketError", "8-byte header"),
        ("version_0", hdr(d1 & 0x3FFF, 6), "UnsupportedVersionError", "protocol version 0"),
        ("version_2", hdr(d1 & 0x3FFF | 2 << 14, 6), "UnsupportedVersionError", "protocol version 2"),
        ("version_3_short", hdr(d1 | 3 << 14, 0)[:8], "UnsupportedVersionError", "protocol version 3"),
        ("count_4_but_50_bytes", hdr(descriptor(4, False, False, 0, 3, 1), 21), "TruncatedPacketError",
         "sample count 4 with 6-axis samples needs 56 bytes, got 50"),
        ("count_1_but_22_bytes", hdr(d1, 7), "LengthMismatchError", "needs 20 bytes, got 22"),
        ("mag_flag_with_6axis_body", hdr(d1 | 1 << 9, 6), "TruncatedPacketError", "9-axis samples needs 26 bytes"),
        ("max_batch_cut_to_mtu23", full16[:40], "TruncatedPacketError", "needs 200 bytes, got 20"),
        ("rate_code_7", hdr(descriptor(1, False, False, 0, 7, 1), 6), "UnknownCodeError", "sample-rate code 7"),
        ("range_code_6", hdr(descriptor(1, False, False, 0, 3, 6), 6), "UnknownCodeError", "range code 6"),
        ("range_code_7", hdr(descriptor(1, False, False, 0, 3, 7), 6), "UnknownCodeError", "range code 7"),
        ("sensor_state_3", hdr(descriptor(1, False, False, 3, 3, 1), 6), "UnknownCodeError", "sensor state 3"),
    ]
    return {
        "valid": valid,
        "malformed": [{"name": n, "hex": h, "error": e, "message_contains": m} for n, h, e, m in malformed],
    }


def control_vectors() -> dict[str, list[dict[str, Any]]]:
    host_us = 1_763_712_000_123_456  # 2025-11-21 in µs since the epoch: a realistic 64-bit value
    valid = [
        ("start_streaming", "command", {"type": "StartStreaming"}, struct.pack("<B", 0x01)),
        ("stop_streaming", "command", {"type": "StopStreaming"}, struct.pack("<B", 0x02)),
        ("set_sample_rate_100hz", "command", {"type": "SetSampleRate", "rate_code": 3}, struct.pack("<BB", 0x03, 3)),
        ("set_ranges_16g_2000dps", "command", {"type": "SetRanges", "range_code": 3}, struct.pack("<BB", 0x04, 3)),
        ("time_sync_request", "command", {"type": "TimeSyncRequest", "token": 200, "host_time_us": host_us},
         struct.pack("<BBQ", 0x05, 200, host_us)),
        ("time_sync_request_max", "command",
         {"type": "TimeSyncRequest", "token": 255, "host_time_us": 2**64 - 1}, struct.pack("<BBQ", 0x05, 255, 2**64 - 1)),
        ("ack_set_sample_rate", "reply", {"type": "Ack", "opcode": 3}, struct.pack("<BB", 0x80, 3)),
        ("time_sync_reply", "reply",
         {"type": "TimeSyncReply", "token": 200, "host_time_us": host_us, "sensor_time_us": 4_000_000_123},
         struct.pack("<BBQI", 0x85, 200, host_us, 4_000_000_123)),
        ("error_unknown_opcode", "reply", {"type": "ErrorReply", "opcode": 0x42, "error": "UNKNOWN_OPCODE"},
         struct.pack("<BBB", 0xFF, 0x42, 1)),
        ("error_bad_length", "reply", {"type": "ErrorReply", "opcode": 0x05, "error": "BAD_LENGTH"},
         struct.pack("<BBB", 0xFF, 0x05, 2)),
        ("error_busy", "reply", {"type": "ErrorReply", "opcode": 0x01, "error": "BUSY"},
         struct.pack("<BBB", 0xFF, 0x01, 5)),
    ]
    # firmware_error: the ERROR reply code a sensor must answer with when this is written to it
    # (None for replies, which only the hub parses).
    malformed = [
        ("empty_write", "", "TruncatedPacketError", "empty payload", "BAD_LENGTH"),
        ("unknown_opcode_0x06", "06", "UnknownCodeError", "unknown opcode 0x06", "UNKNOWN_OPCODE"),
        ("unknown_opcode_0x00", "00", "UnknownCodeError", "unknown opcode 0x00", "UNKNOWN_OPCODE"),
        ("start_with_extra_byte", "0100", "LengthMismatchError", "needs 1 bytes, got 2", "BAD_LENGTH"),
        ("set_rate_without_code", "03", "TruncatedPacketError", "needs 2 bytes, got 1", "BAD_LENGTH"),
        ("set_rate_reserved_7", "0307", "UnknownCodeError", "sample-rate code 7", "UNKNOWN_RATE_CODE"),
        ("set_ranges_reserved_6", "0406", "UnknownCodeError", "range code 6", "UNKNOWN_RANGE_CODE"),
        ("time_sync_cut", struct.pack("<BBQ", 5, 1, host_us)[:9].hex(), "TruncatedPacketError",
         "needs 10 bytes, got 9", "BAD_LENGTH"),
        ("time_sync_long", (struct.pack("<BBQ", 5, 1, host_us) + b"\0").hex(), "LengthMismatchError",
         "needs 10 bytes, got 11", "BAD_LENGTH"),
        ("reply_cut", "8501", "TruncatedPacketError", "needs 14 bytes, got 2", None),
        ("ack_of_reply", "8085", "UnknownCodeError", "acked opcode 0x85", None),
        ("error_code_reserved", "ff0309", "UnknownCodeError", "error code 9", None),
    ]
    return {
        "valid": [{"name": n, "direction": d, "message": m, "hex": b.hex()} for n, d, m, b in valid],
        "malformed": [
            {"name": n, "hex": h, "error": e, "message_contains": m, "firmware_error": f}
            for n, h, e, m, f in malformed
        ],
    }


def info_vectors() -> dict[str, list[dict[str, Any]]]:
    def info(fw: tuple[int, int, int], sid: str, battery: int, caps: int, rate: int, rng: int) -> bytes:
        return struct.pack("<4B6s4B", 1, *fw, bytes.fromhex(sid), battery, caps, rate, rng)

    valid = [
        ("thigh_9axis", (1, 4, 2), "c0ffee012345", 87, 1, 3, 5),
        ("pelvis_6axis_battery_unknown", (0, 9, 17), "a1b2c3d4e5f6", 255, 0, 5, 1),
        ("empty_battery", (255, 255, 255), "000000000000", 0, 0, 0, 0),
    ]
    good = info((1, 4, 2), "c0ffee012345", 87, 1, 3, 5)
    malformed = [
        ("empty", b"", "TruncatedPacketError", "needs 14 bytes, got 0"),
        ("cut_13", good[:13], "TruncatedPacketError", "needs 14 bytes, got 13"),
        ("long_15", good + b"\0", "LengthMismatchError", "needs 14 bytes, got 15"),
        ("version_2", b"\x02" + good[1:], "UnsupportedVersionError", "protocol version 2"),
        ("battery_101", info((1, 0, 0), "c0ffee012345", 101, 1, 3, 5), "FieldValueError", "battery percent 101"),
        ("reserved_capability", info((1, 0, 0), "c0ffee012345", 50, 0x81, 3, 5), "UnknownCodeError",
         "capabilities 0x81"),
        ("rate_code_7", info((1, 0, 0), "c0ffee012345", 50, 1, 7, 5), "UnknownCodeError", "sample-rate code 7"),
        ("range_code_6", info((1, 0, 0), "c0ffee012345", 50, 1, 3, 6), "UnknownCodeError", "range code 6"),
    ]
    return {
        "valid": [
            {
                "name": n,
                "fields": {"protocol_version": 1, "firmware_version": list(fw), "sensor_id": sid,
                           "battery_percent": None if bat == 255 else bat, "has_mag": bool(caps & 1),
                           "rate_code": rate, "range_code": rng},
                "hex": info(fw, sid, bat, caps, rate, rng).hex(),
            }
            for n, fw, sid, bat, caps, rate, rng in valid
        ],
        "malformed": [{"name": n, "hex": b.hex(), "error": e, "message_contains": m} for n, b, e, m in malformed],
    }


def build() -> dict[str, Any]:
    return {
        "protocol_version": 1,
        "about": "Golden vectors of the sensorhub BLE wire protocol v1 (firmware_protocol/PROTOCOL.md). "
                 "Generated by firmware_protocol/tools/make_vectors.py; do not edit by hand. "
                 "Both the Python codec and the C encoder must reproduce every 'hex' from its inputs.",
        "data": data_vectors(),
        "control": control_vectors(),
        "info": info_vectors(),
    }


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "vectors.json"
    out.write_text(json.dumps(build(), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
