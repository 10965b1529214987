"""``sensorhub inspect FILE [--json]``: what a recording holds and how good its data link was.

Prints the session metadata (athlete, drill, side, source, created), the declared sensors (id,
segment, side, 6/9-axis, nominal rate), the duration, and per sensor the measured rate, packets and
samples, packet loss (count and %) from sequence gaps, duplicates and malformed payloads, followed by
the marks, whether a calibration is stored and whether the file was cut off. Loss and rates come
from running the notifications through the same :class:`sensorhub.ingest.Ingest` that live data
takes, so what inspect reports is what the pipeline sees. ``--json`` prints the same report as JSON.

Packets lost before a sensor's first received packet or after its last one leave no sequence gap
and cannot be counted; a simulator's own count (``meta.extra["sim"]["dropped_packets"]``) is shown
beside the measured one when present.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any, TextIO

from sensorhub.ingest import Ingest
from sensorhub.recording import open_recording

__all__ = ["format_report", "inspect_recording", "register"]


def inspect_recording(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The inspect report of the recording at ``path`` as a JSON-ready dict.

    Raises :class:`~sensorhub.errors.RecordingError` when the file is missing or broken.
    """
    rec = open_recording(path)
    ingest = Ingest()
    for note in rec.iter_notifications():
        ingest.push(note)
    ingest.flush()
    stats = ingest.stats()
    counts = rec.notification_counts
    sim_dropped = _sim_dropped(rec.meta.extra)

    sensors: list[dict[str, Any]] = []
    for desc in rec.sensors:
        st = stats.get(desc.sensor_id)
        entry: dict[str, Any] = {
            "sensor_id": desc.sensor_id,
            "segment": desc.segment,
            "side": desc.side,
            "axes": 9 if desc.has_mag else 6,
            "nominal_rate_hz": desc.rate_hz,
            "notifications": counts.get(desc.sensor_id, 0),
        }
        if st is None:
            entry.update(packets_received=0, samples=0, packets_lost=0, loss_percent=None)
        else:
            loss = st.loss_fraction
            entry.update(
                measured_rate_hz=_finite(st.rate_hz),
                stream_rate_hz=_finite(st.nominal_rate_hz),
                clock_drift_ppm=_finite(st.drift_ppm),
                packets_received=st.packets_received,
                samples=st.samples,
                packets_lost=st.packets_lost,
                loss_percent=None if math.isnan(loss) else round(100.0 * loss, 3),
                duplicates=st.duplicates,
                reordered=st.reordered,
                late=st.late,
                malformed=st.malformed,
                inconsistent=st.inconsistent,
                resets=st.resets,
                gaps=st.gaps,
                last_error=st.last_error,
            )
        if sim_dropped is not None and desc.sensor_id in sim_dropped:
            entry["sim_dropped_packets"] = sim_dropped[desc.sensor_id]
        sensors.append(entry)

    meta = rec.meta
    return {
        "file": str(rec.path),
        "format_version": list(rec.format_version),
        "athlete": None if meta.athlete is None else {"id": meta.athlete.id, "name": meta.athlete.name},
        "drill": meta.drill,
        "side": meta.side,
        "source": meta.source,
        "created": meta.created,
        "duration_s": round(rec.duration_s, 3),
        "notifications": rec.n_notifications,
        "sensors": sensors,
        "marks": [{"t_host_s": m.t_host_s, "label": m.label, "data": m.data} for m in rec.marks],
        "calibration_stored": rec.calibration is not None,
        "truncated": rec.truncated,
        "closed": rec.end is not None,
    }


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 4)


def _sim_dropped(extra: dict[str, Any]) -> dict[str, int] | None:
    sim = extra.get("sim")
    dropped = sim.get("dropped_packets") if isinstance(sim, dict) else None
    if not isinstance(dropped, dict):
        return None
    return {str(k): int(v) for k, v in dropped.items() if isinstance(v, int)}


def format_report(report: dict[str, Any]) -> str:
    """The report as aligned text for a terminal."""
    athlete = report["athlete"]
    who = "-" if athlete is None else (f"{athlete['name']} ({athlete['id']})" if athlete["name"] else athlete["id"])
    lines = [
        f"file      {report['file']}  (format {'.'.join(map(str, report['format_version']))})",
        f"athlete   {who}",
        f"drill     {report['drill'] or '-'}   side {report['side'] or '-'}",
        f"source    {report['source']}   created {report['created'] or '-'}",
        f"duration  {report['duration_s']:.1f} s   notifications {report['notifications']}",
        f"file end  {'TRUNCATED (cut off; readable up to the last complete record)' if report['truncated'] else 'complete'}"
        + ("" if report["closed"] else ", never closed by the writer"),
        f"calibration {'stored' if report['calibration_stored'] else 'not stored'}",
        "",
        "sensors",
    ]
    for s in report["sensors"]:
        side = f" {s['side']}" if s["side"] else ""
        nominal = f"{s['nominal_rate_hz']:g} Hz" if s["nominal_rate_hz"] else "? Hz"
        lines.append(f"  {s['sensor_id']}: {s['segment']}{side}, {s['axes']}-axis, nominal {nominal}")
        if not s["packets_received"]:
            bad = s.get("malformed", 0)
            lines.append(f"    no data ({bad} malformed payloads; last: {s['last_error']})" if bad else "    no data")
            continue
        rate = s.get("measured_rate_hz")
        drift = s.get("clock_drift_ppm")
        lines.append(
            f"    measured {rate:.3f} Hz (clock drift {drift:+.1f} ppm)" if rate is not None and drift is not None
            else "    measured rate unknown"
        )
        loss = s["loss_percent"]
        sim = f"   (simulator dropped {s['sim_dropped_packets']})" if "sim_dropped_packets" in s else ""
        lines.append(
            f"    packets {s['packets_received']} received, {s['packets_lost']} lost"
            f" ({0.0 if loss is None else loss:.2f} %){sim}; samples {s['samples']}"
        )
        extras = [f"{k} {s[k]}" for k in ("duplicates", "reordered", "late", "malformed", "inconsistent", "resets")]
        lines.append("    " + ", ".join(extras))
        if s.get("last_error"):
            lines.append(f"    last malformed payload: {s['last_error']}")
    lines.append("")
    lines.append(f"marks ({len(report['marks'])})")
    for m in report["marks"]:
        data = f"  {json.dumps(m['data'], sort_keys=True)}" if m["data"] else ""
        lines.append(f"  {m['t_host_s']:8.3f} s  {m['label']}{data}")
    return "\n".join(lines)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="show a recording's metadata, sensors, marks and link quality (loss from sequence gaps)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="session recording")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    stream = out if out is not None else sys.stdout
    report = inspect_recording(args.file)
    if args.json:
        json.dump(report, stream, indent=2)
        stream.write("\n")
    else:
        print(format_report(report), file=stream)
    return 0
