"""The BLE wire protocol between IMU firmware and the hub, version 1 (pure codecs, no I/O).

Specification: firmware_protocol/PROTOCOL.md; C twin for firmware: firmware_protocol/c/.
Golden vectors shared by both implementations: firmware_protocol/vectors.json.

* :func:`decode_packet` / :func:`encode_packet`: data-characteristic notifications <-> SI units.
* :func:`decode_control` / :func:`encode_control`: control commands and replies.
* :func:`decode_info` / :func:`encode_info`: the info characteristic record.
* :func:`unwrap_seq`, :func:`unwrap_time_us`, :class:`SequenceUnwrapper`: undoing the wrap of
  the 16-bit sequence number and the 32-bit µs timestamp.

Every malformed payload raises a subclass of :class:`sensorhub.errors.ProtocolError`.
"""

from sensorhub.protocol.control import (
    COMMAND_OPCODES,
    Ack,
    ControlErrorCode,
    ControlMessage,
    ErrorReply,
    Opcode,
    SetRanges,
    SetSampleRate,
    StartStreaming,
    StopStreaming,
    TimeSyncPoint,
    TimeSyncReply,
    TimeSyncRequest,
    control_length,
    decode_control,
    encode_control,
    time_sync_point,
)
from sensorhub.protocol.data import (
    DataPacket,
    decode_packet,
    encode_packet,
    encode_packet_raw,
    max_samples_per_packet,
    packet_size_bytes,
)
from sensorhub.protocol.errors import (
    FieldValueError,
    LengthMismatchError,
    ProtocolError,
    TruncatedPacketError,
    UnknownCodeError,
    UnsupportedVersionError,
)
from sensorhub.protocol.info import (
    BATTERY_UNKNOWN,
    INFO_LENGTH,
    SensorInfo,
    decode_info,
    encode_info,
)
from sensorhub.protocol.spec import (
    CONTROL_CHAR_UUID,
    DATA_CHAR_UUID,
    DATA_HEADER_BYTES,
    INFO_CHAR_UUID,
    MAG_UT_PER_LSB,
    MAX_SAMPLES_PER_PACKET,
    PROTOCOL_VERSION,
    RANGE_CODES,
    SAMPLE_RATES_HZ,
    SERVICE_UUID,
    STANDARD_GRAVITY_M_S2,
    FullScaleRange,
    SensorState,
    range_code_for,
    rate_code_for_hz,
)
from sensorhub.protocol.unwrap import (
    SeqStatus,
    SequenceUnwrapper,
    SeqUpdate,
    unwrap_counter,
    unwrap_seq,
    unwrap_time_us,
)

__all__ = [
    "BATTERY_UNKNOWN",
    "COMMAND_OPCODES",
    "CONTROL_CHAR_UUID",
    "DATA_CHAR_UUID",
    "DATA_HEADER_BYTES",
    "INFO_CHAR_UUID",
    "INFO_LENGTH",
    "MAG_UT_PER_LSB",
    "MAX_SAMPLES_PER_PACKET",
    "PROTOCOL_VERSION",
    "RANGE_CODES",
    "SAMPLE_RATES_HZ",
    "SERVICE_UUID",
    "STANDARD_GRAVITY_M_S2",
    "Ack",
    "ControlErrorCode",
    "ControlMessage",
    "DataPacket",
    "ErrorReply",
    "FieldValueError",
    "FullScaleRange",
    "LengthMismatchError",
    "Opcode",
    "ProtocolError",
    "SensorInfo",
    "SensorState",
    "SeqStatus",
    "SeqUpdate",
    "SequenceUnwrapper",
    "SetRanges",
    "SetSampleRate",
    "StartStreaming",
    "StopStreaming",
    "TimeSyncPoint",
    "TimeSyncReply",
    "TimeSyncRequest",
    "TruncatedPacketError",
    "UnknownCodeError",
    "UnsupportedVersionError",
    "control_length",
    "decode_control",
    "decode_info",
    "decode_packet",
    "encode_control",
    "encode_info",
    "encode_packet",
    "encode_packet_raw",
    "max_samples_per_packet",
    "packet_size_bytes",
    "range_code_for",
    "rate_code_for_hz",
    "time_sync_point",
    "unwrap_counter",
    "unwrap_seq",
    "unwrap_time_us",
]
