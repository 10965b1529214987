"""IMU CSV import and export: recordings from other systems, one file per sensor.

The format (``docs/csv-format.md``) is a header ``t,ax,ay,az,gx,gy,gz`` with optional ``mx,my,mz``,
then one row per sample: ``t`` in seconds on a clock shared by all sensors of the session, specific
force in m/s² (+g upward at rest), angular rate in rad/s, magnetic field in µT.

Reading is fast on the good path (``numpy.loadtxt`` parses in C); only when that fails, or the values
it produced are not acceptable, does a careful pass over the lines run, to report the first problem
with its file, line and column. Errors derive from :class:`sensorhub.errors.ImportFormatError`.

This module reads and writes files only; it never resamples, filters or converts units.
"""

from __future__ import annotations

import logging
import math
import os
import re
import warnings
from collections.abc import Generator
from pathlib import Path
from typing import Any, Final

import numpy as np

from sensorhub.errors import ImportFormatError, SensorhubError
from sensorhub.samples import FloatArray, ImuSamples

__all__ = [
    "IMU_COLUMNS",
    "MAG_COLUMNS",
    "CsvColumnCountError",
    "CsvEmptyError",
    "CsvExportError",
    "CsvFormatError",
    "CsvHeaderError",
    "CsvTimeOrderError",
    "CsvValueError",
    "read_imu_csv",
    "read_imu_csv_dir",
    "write_imu_csv",
]

logger = logging.getLogger(__name__)

IMU_COLUMNS: Final = ("t", "ax", "ay", "az", "gx", "gy", "gz")
"""Required columns, in the order :func:`write_imu_csv` writes them."""
MAG_COLUMNS: Final = ("mx", "my", "mz")
"""Optional magnetometer columns: all three or none."""

_DELIMITER: Final = ","
_COMMENT: Final = "#"
# A plain decimal number. Python's float() would also take "1_0", "infinity" and "nan"; the file
# format does not, and NaN/inf get their own message.
_NUMBER: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NON_FINITE: Final = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)

# Plausibility limits for the unit warnings (not errors: an unusual recording can exceed them).
_ACC_NORM_MIN_M_S2: Final = 4.0  # median |acc| below this: probably in g, not m/s²
_GYR_MAX_RAD_S: Final = 35.0  # 2000 °/s, the largest common full scale: above, probably °/s
_MAG_NORM_MIN_UT: Final = 5.0  # Earth's field is 25-65 µT: below, probably gauss


class CsvFormatError(ImportFormatError):
    """An IMU CSV file is malformed. ``line`` is 1-based; ``column`` is a column name when known."""

    def __init__(self, path: Path | str, line: int | None, column: str | None, problem: str) -> None:
        self.path = Path(path)
        self.line = line
        self.column = column
        self.problem = problem
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its fields (the default would pass the one message): it can cross a pipe.
        return type(self), (self.path, self.line, self.column, self.problem), self.__dict__


class CsvEmptyError(CsvFormatError):
    """The file has no header, or a header and no data rows."""


class CsvHeaderError(CsvFormatError):
    """A header column is missing, unknown or duplicated, or the magnetometer columns are incomplete."""


class CsvColumnCountError(CsvFormatError):
    """A data line has more or fewer fields than the header."""


class CsvValueError(CsvFormatError):
    """A field is empty, not a number, NaN or infinite."""


class CsvTimeOrderError(CsvFormatError):
    """``t`` does not increase strictly from one row to the next."""


class CsvExportError(SensorhubError, ValueError):
    """Samples cannot be written as a valid IMU CSV (non-finite values, time not increasing, I/O)."""


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


def _content_lines(path: Path) -> Generator[tuple[int, str], None, None]:
    """(1-based line number, text) of the lines that are neither blank nor comments.

    Lines are decoded one by one (not in the text layer's chunks), so invalid UTF-8 anywhere in a
    large file is reported with its own line number. LF, CR LF and a lone CR end a line, as in
    Python's universal-newline mode.
    """
    lineno = 0
    with open(path, "rb") as f:
        for raw in f:
            body = raw[:-1] if raw.endswith(b"\n") else raw
            if body.endswith(b"\r"):
                body = body[:-1]
            for part in body.split(b"\r"):
                lineno += 1
                try:
                    decoded = part.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise CsvFormatError(
                        path, lineno, None, f"not UTF-8 text (byte {exc.start + 1} of the line); expected a CSV text file"
                    ) from None
                if lineno == 1:
                    decoded = decoded.removeprefix("\ufeff")
                text = decoded.split(_COMMENT, 1)[0].strip()
                if text:
                    yield lineno, text


def _parse_header(path: Path, lineno: int, text: str) -> list[str]:
    names = [name.strip() for name in text.split(_DELIMITER)]
    allowed = IMU_COLUMNS + MAG_COLUMNS
    expected = f"expected the columns {','.join(IMU_COLUMNS)} and optionally {','.join(MAG_COLUMNS)}"
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise CsvHeaderError(path, lineno, name, f"column named twice (fields {names.index(name) + 1} and {i + 1})")
        seen.add(name)
        if name not in allowed:
            hint = ""
            if _NUMBER.fullmatch(name):
                hint = " (the header must be the first line that is not a comment)"
            elif ";" in name or "\t" in name:
                hint = " (fields must be separated by ',')"
            raise CsvHeaderError(path, lineno, name or f"#{i + 1}", f"unknown column{hint}; {expected}")
    missing = [c for c in IMU_COLUMNS if c not in seen]
    if missing:
        raise CsvHeaderError(path, lineno, missing[0], f"missing column(s) {','.join(missing)}; {expected}")
    mag_present = [c for c in MAG_COLUMNS if c in seen]
    if mag_present and len(mag_present) != 3:
        absent = [c for c in MAG_COLUMNS if c not in seen]
        raise CsvHeaderError(
            path, lineno, absent[0], f"magnetometer columns incomplete: have {','.join(mag_present)}, "
            f"missing {','.join(absent)}; give all of {','.join(MAG_COLUMNS)} or none"
        )
    return names


def _locate_error(path: Path, names: list[str], header_lineno: int) -> FloatArray:
    """Parse the data lines one by one and raise at the first problem; returns the table if none."""
    i_t = names.index("t")
    rows: list[list[float]] = []
    prev_t = -math.inf
    prev_line = header_lineno
    for lineno, text in _content_lines(path):
        if lineno <= header_lineno:
            continue
        fields = text.split(_DELIMITER)
        if len(fields) != len(names):
            hint = " (decimal commas are not allowed: use '.')" if len(fields) > len(names) else ""
            raise CsvColumnCountError(
                path, lineno, None, f"{len(fields)} fields; expected {len(names)} ({','.join(names)}){hint}"
            )
        row = []
        for name, field in zip(names, fields, strict=True):
            field = field.strip()
            if not field:
                raise CsvValueError(path, lineno, name, "empty field; expected a number")
            if _NON_FINITE.fullmatch(field):
                raise CsvValueError(path, lineno, name, f"{field!r} is not a finite number; expected a measured value")
            if not _NUMBER.fullmatch(field):
                raise CsvValueError(path, lineno, name, f"{field!r} is not a number")
            value = float(field)
            if not math.isfinite(value):  # e.g. 1e999
                raise CsvValueError(path, lineno, name, f"{field!r} overflows a 64-bit float")
            row.append(value)
        t = row[i_t]
        if not t > prev_t:
            raise CsvTimeOrderError(
                path, lineno, "t", f"t={t!r} s is not after t={prev_t!r} s on line {prev_line}; "
                "expected strictly increasing time"
            )
        prev_t, prev_line = t, lineno
        rows.append(row)
    if not rows:
        raise CsvEmptyError(path, header_lineno, None, "header but no data rows; expected at least one sample")
    return np.asarray(rows, dtype=np.float64)


def _warn_on_units(path: Path, samples: ImuSamples) -> None:
    acc_norm = float(np.median(np.linalg.norm(samples.acc_m_s2, axis=1)))
    if acc_norm < _ACC_NORM_MIN_M_S2:
        logger.warning("%s: median |acc| is %.2f; expected about 9.81 m/s² (is the file in g?)", path, acc_norm)
    gyr_max = float(np.max(np.abs(samples.gyr_rad_s)))
    if gyr_max > _GYR_MAX_RAD_S:
        logger.warning("%s: |gyr| reaches %.1f rad/s; expected rad/s, not °/s", path, gyr_max)
    if samples.mag_uT is not None:
        mag_norm = float(np.median(np.linalg.norm(samples.mag_uT, axis=1)))
        if mag_norm < _MAG_NORM_MIN_UT:
            logger.warning("%s: median |mag| is %.3f; expected 25-65 µT (is the file in gauss?)", path, mag_norm)


def read_imu_csv(path: str | os.PathLike[str]) -> ImuSamples:
    """Read one sensor's IMU CSV file into :class:`ImuSamples` (``gap_before`` is None: unknown).

    Blank lines and ``#`` comments are ignored; the header is the first other line and may list the
    columns in any order. Raises a :class:`CsvFormatError` subclass naming file, line and column.
    """
    path = Path(path)
    try:
        lines = _content_lines(path)
        first = next(lines, None)
        lines.close()
    except OSError as exc:
        raise CsvFormatError(path, None, None, f"cannot read: {exc.strerror or exc}") from exc
    if first is None:
        raise CsvEmptyError(path, None, None, f"empty file; expected a header {','.join(IMU_COLUMNS)}[,mx,my,mz] and data rows")
    header_lineno, header_text = first
    names = _parse_header(path, header_lineno, header_text)

    table: FloatArray | None = None
    try:
        with warnings.catch_warnings():
            # A header without rows is reported below as CsvEmptyError; numpy's own warning is noise.
            warnings.simplefilter("ignore", UserWarning)
            table = np.loadtxt(
                path, dtype=np.float64, delimiter=_DELIMITER, comments=_COMMENT, skiprows=header_lineno,
                ndmin=2, encoding="utf-8-sig",
            )
    except ValueError:  # includes UnicodeDecodeError: the careful pass below names the line
        table = None
    if table is not None and (
        table.shape[0] == 0
        or table.shape[1] != len(names)
        or not np.isfinite(table).all()
        or not (np.diff(table[:, names.index("t")]) > 0).all()
    ):
        table = None
    if table is None:
        table = _locate_error(path, names, header_lineno)

    def cols(which: tuple[str, ...]) -> FloatArray:
        return np.ascontiguousarray(table[:, [names.index(c) for c in which]])

    samples = ImuSamples(
        t_s=np.ascontiguousarray(table[:, names.index("t")]),
        acc_m_s2=cols(("ax", "ay", "az")),
        gyr_rad_s=cols(("gx", "gy", "gz")),
        mag_uT=cols(MAG_COLUMNS) if "mx" in names else None,
    )
    _warn_on_units(path, samples)
    return samples


def read_imu_csv_dir(directory: str | os.PathLike[str], segments: tuple[str, ...] = ("pelvis", "thigh")) -> dict[str, ImuSamples]:
    """Read ``<segment>.csv`` for each segment in ``directory`` (the layout of the example sessions)."""
    directory = Path(directory)
    missing = [s for s in segments if not (directory / f"{s}.csv").is_file()]
    if missing:
        raise CsvFormatError(
            directory, None, None, f"missing {', '.join(f'{s}.csv' for s in missing)}; expected one IMU CSV per segment"
        )
    return {segment: read_imu_csv(directory / f"{segment}.csv") for segment in segments}


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


def write_imu_csv(path: str | os.PathLike[str], samples: ImuSamples) -> None:
    """Write ``samples`` as an IMU CSV file that :func:`read_imu_csv` reads back.

    Time is written with nine decimals (1 ns), the measurements to 9
    significant digits: relative error below 5e-9, and float32 sensor readings come back exactly once
    cast to float32. The file appears at ``path`` only once it is complete.
    """
    path = Path(path)
    t = np.asarray(samples.t_s, dtype=np.float64)
    columns = [t[:, None], samples.acc_m_s2, samples.gyr_rad_s]
    names = list(IMU_COLUMNS)
    if samples.mag_uT is not None:
        columns.append(samples.mag_uT)
        names += MAG_COLUMNS
    table = np.hstack([np.asarray(c, dtype=np.float64) for c in columns])
    if len(table) == 0:
        raise CsvExportError(f"{path}: no samples to write; an IMU CSV needs at least one row")
    bad = ~np.isfinite(table)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise CsvExportError(f"{path}: sample {row} has {names[col]}={table[row, col]}; only finite values can be written")
    dt = np.diff(t)
    if (dt <= 0).any():
        i = int(np.argmax(dt <= 0)) + 1
        raise CsvExportError(f"{path}: t_s[{i}]={t[i]!r} is not after t_s[{i - 1}]={t[i - 1]!r}; time must increase strictly")
    if (np.diff(np.round(t, 9)) <= 0).any():
        raise CsvExportError(f"{path}: samples closer than 1 ns cannot be written with distinct times")
    tmp = path.with_name(path.name + ".partial")
    try:
        np.savetxt(
            tmp, table, fmt=["%.9f"] + ["%.9g"] * (len(names) - 1), delimiter=_DELIMITER,
            header=_DELIMITER.join(names), comments="",
        )
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CsvExportError(f"{path}: cannot write: {exc.strerror or exc}") from exc
