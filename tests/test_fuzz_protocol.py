"""Property-based fuzzing of the wire-protocol decoders (data packets, control messages, info record).

For any bytes, each decoder either returns a record that re-encodes to the same bytes (data
packets: up to the clipping bit the encoder derives from the counts) or raises a
:class:`sensorhub.errors.ProtocolError` whose message names the record kind. Inputs are plain
random bytes and, more usefully, valid records with bit flips, truncation and extension, so the
decoders' later checks are reached too. ``SENSORHUB_FUZZ_EXAMPLES`` raises the example count.
"""

from __future__ import annotations

import os

import numpy as np
from fuzz_support import (
    check_bulk_decoder,
    check_control,
    check_data_packet,
    check_info,
)
from hypothesis import given, settings
from hypothesis import strategies as st

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
    SetRanges,
    SetSampleRate,
    StartStreaming,
    StopStreaming,
    TimeSyncReply,
    TimeSyncRequest,
)

EXAMPLES = int(os.environ.get("SENSORHUB_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None)


@st.composite
def valid_data_packets(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(1, 16))
    axes = draw(st.sampled_from([6, 9]))
    raw = np.array(draw(st.lists(st.integers(-32768, 32767), min_size=n * axes, max_size=n * axes))).reshape(n, axes)
    return encode_packet_raw(
        seq=draw(st.integers(0, 0xFFFF)), t_first_us=draw(st.integers(0, 0xFFFFFFFF)),
        rate_code=draw(st.integers(0, 6)), range_code=draw(st.integers(0, 5)), raw=raw,
        sensor_state=draw(st.integers(0, 2)), clipping=draw(st.booleans()),
    )


@st.composite
def valid_control(draw: st.DrawFn) -> bytes:
    u8, u32, u64 = st.integers(0, 255), st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1)
    msg = draw(st.one_of(
        st.just(StartStreaming()), st.just(StopStreaming()),
        st.builds(SetSampleRate, st.integers(0, 6)), st.builds(SetRanges, st.integers(0, 5)),
        st.builds(TimeSyncRequest, u8, u64), st.builds(TimeSyncReply, u8, u64, u32),
        st.builds(Ack, st.sampled_from([1, 2, 3, 4, 5])),
        st.builds(ErrorReply, u8, st.sampled_from(list(ControlErrorCode))),
    ))
    return encode_control(msg)


@st.composite
def valid_info(draw: st.DrawFn) -> bytes:
    return encode_info(SensorInfo(
        protocol_version=1,
        firmware_version=(draw(st.integers(0, 255)), draw(st.integers(0, 255)), draw(st.integers(0, 255))),
        sensor_id=draw(st.binary(min_size=6, max_size=6)).hex(),
        battery_percent=draw(st.one_of(st.none(), st.integers(0, 100))),
        has_mag=draw(st.booleans()), rate_code=draw(st.integers(0, 6)), range_code=draw(st.integers(0, 5)),
    ))


def damaged(valid: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Valid records with up to four byte changes, then cut or extended."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(valid))
        for _ in range(draw(st.integers(0, 4))):
            if data:
                i = draw(st.integers(0, len(data) - 1))
                data[i] = draw(st.one_of(st.integers(0, 255), st.just(data[i] ^ (1 << draw(st.integers(0, 7))))))
        cut = draw(st.integers(0, len(data) + 4))
        return bytes(data[:cut]) + draw(st.binary(max_size=max(0, cut - len(data))))

    return build()


@FUZZ
@given(st.one_of(st.binary(max_size=320), damaged(valid_data_packets())))
def test_data_packet_decoder_returns_the_bytes_or_a_protocol_error(payload: bytes) -> None:
    check_data_packet(payload)


@FUZZ
@given(st.one_of(st.binary(max_size=20), damaged(valid_control())))
def test_control_decoder_round_trips_or_raises_a_protocol_error(payload: bytes) -> None:
    check_control(payload)


@FUZZ
@given(st.one_of(st.binary(max_size=20), damaged(valid_info())))
def test_info_decoder_round_trips_or_raises_a_protocol_error(payload: bytes) -> None:
    check_info(payload)


@settings(max_examples=60, deadline=None)
@given(valid_data_packets())
def test_every_valid_data_packet_decodes(payload: bytes) -> None:
    """The damaged-input tests only mean something if the undamaged records decode."""
    check_data_packet(payload)
    from sensorhub.protocol import decode_packet

    decode_packet(payload)


@FUZZ
@given(st.lists(st.one_of(valid_data_packets(), damaged(valid_data_packets()), st.binary(max_size=40)), max_size=12))
def test_bulk_decoder_agrees_with_the_single_decoder(payloads: list[bytes]) -> None:
    """decode_packets groups payloads by length and descriptor; each result must be decode_packet's."""
    # Repeats give the bulk path groups of equal length and descriptor to work on.
    check_bulk_decoder(payloads + payloads[: len(payloads) // 2])
