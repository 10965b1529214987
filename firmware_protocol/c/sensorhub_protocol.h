/*
 * sensorhub_protocol.h - sensor side of the sensorhub BLE wire protocol, version 1.
 *
 * Specification: firmware_protocol/PROTOCOL.md. Golden vectors: firmware_protocol/vectors.json
 * (tests/test_protocol_c.py checks this code against them byte for byte).
 *
 * What firmware needs: encode data packets from raw int16 IMU counts, encode the info record,
 * parse control commands and encode the replies. C99, no dynamic memory, no I/O, depends only on
 * <stdint.h>, <stddef.h> and <string.h>; every function writes into a caller-provided buffer.
 * All multi-byte fields are little-endian on the wire regardless of the CPU's byte order.
 */
#ifndef SENSORHUB_PROTOCOL_H
#define SENSORHUB_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- GATT ------------------------------------------------------------------------------ */
#define SHP_SERVICE_UUID      "7a1d0001-5c3e-4b8e-9f3a-2b6d8c4e1f00"
#define SHP_DATA_CHAR_UUID    "7a1d0002-5c3e-4b8e-9f3a-2b6d8c4e1f00" /* notify            */
#define SHP_CONTROL_CHAR_UUID "7a1d0003-5c3e-4b8e-9f3a-2b6d8c4e1f00" /* write + notify    */
#define SHP_INFO_CHAR_UUID    "7a1d0004-5c3e-4b8e-9f3a-2b6d8c4e1f00" /* read              */

#define SHP_PROTOCOL_VERSION 1u

/* ---- data packet ----------------------------------------------------------------------- */
#define SHP_DATA_HEADER_LEN   8u
#define SHP_MAX_SAMPLES       16u   /* 4-bit "count - 1" field                              */
#define SHP_AXES_6            6u    /* acc xyz, gyr xyz                                      */
#define SHP_AXES_9            9u    /* acc xyz, gyr xyz, mag xyz                             */
#define SHP_DATA_MAX_LEN      (SHP_DATA_HEADER_LEN + SHP_MAX_SAMPLES * SHP_AXES_9 * 2u) /* 296 */
#define SHP_ATT_OVERHEAD      3u    /* notification payload = ATT_MTU - 3                   */

/* Sample-rate codes (descriptor bits 5-3). 7 is reserved. */
enum shp_rate_code {
    SHP_RATE_25HZ = 0, SHP_RATE_50HZ = 1, SHP_RATE_60HZ = 2, SHP_RATE_100HZ = 3,
    SHP_RATE_120HZ = 4, SHP_RATE_200HZ = 5, SHP_RATE_400HZ = 6
};
#define SHP_RATE_CODE_COUNT 7u

/* Full-scale range codes (descriptor bits 2-0): accelerometer +-g / gyroscope +-dps. 6, 7 reserved. */
enum shp_range_code {
    SHP_RANGE_2G_250DPS = 0, SHP_RANGE_4G_500DPS = 1, SHP_RANGE_8G_1000DPS = 2,
    SHP_RANGE_16G_2000DPS = 3, SHP_RANGE_4G_2000DPS = 4, SHP_RANGE_8G_2000DPS = 5
};
#define SHP_RANGE_CODE_COUNT 6u

/* Sensor state (descriptor bits 7-6). 3 is reserved. */
enum shp_sensor_state {
    SHP_STATE_STREAMING = 0,  /* normal                                                    */
    SHP_STATE_WARMING_UP = 1, /* settling or clock not yet time-synced                     */
    SHP_STATE_DEGRADED = 2    /* known fault, e.g. failed self-test                        */
};

/* Header fields of one data packet. Flags are 0 or non-zero (no <stdbool.h> needed). */
typedef struct {
    uint16_t seq;          /* +1 per packet, wraps 65535 -> 0                                */
    uint32_t t_first_us;   /* sensor clock at the first sample, wraps at 2^32                */
    uint8_t rate_code;     /* enum shp_rate_code                                             */
    uint8_t range_code;    /* enum shp_range_code                                            */
    uint8_t sensor_state;  /* enum shp_sensor_state                                          */
    uint8_t clipping;      /* firmware knows a value saturated (ORed with the counts check)  */
    uint8_t has_mag;       /* samples carry 9 values instead of 6                            */
    uint8_t n_samples;     /* 1..SHP_MAX_SAMPLES                                             */
} shp_data_header_t;

/* ---- control --------------------------------------------------------------------------- */
enum shp_opcode {
    SHP_OP_START_STREAMING = 0x01,   /* [op]                                       1 byte   */
    SHP_OP_STOP_STREAMING = 0x02,    /* [op]                                       1 byte   */
    SHP_OP_SET_SAMPLE_RATE = 0x03,   /* [op, rate_code]                            2 bytes  */
    SHP_OP_SET_RANGES = 0x04,        /* [op, range_code]                           2 bytes  */
    SHP_OP_TIME_SYNC_REQUEST = 0x05, /* [op, token, host_time_us u64]              10 bytes */
    SHP_OP_ACK = 0x80,               /* [op, acked opcode]                         2 bytes  */
    SHP_OP_TIME_SYNC_REPLY = 0x85,   /* [op, token, host_time_us u64, sensor u32]  14 bytes */
    SHP_OP_ERROR = 0xFF              /* [op, failed opcode, error code]            3 bytes  */
};
#define SHP_ACK_LEN             2u
#define SHP_TIME_SYNC_REPLY_LEN 14u
#define SHP_ERROR_REPLY_LEN     3u

/* Error codes carried in an ERROR reply (byte 2). 0 and 7..255 are reserved. */
enum shp_error_code {
    SHP_ERROR_UNKNOWN_OPCODE = 1,
    SHP_ERROR_BAD_LENGTH = 2,
    SHP_ERROR_UNKNOWN_RATE_CODE = 3,
    SHP_ERROR_UNKNOWN_RANGE_CODE = 4,
    SHP_ERROR_BUSY = 5,
    SHP_ERROR_HARDWARE_FAULT = 6
};

/* Return status. For shp_parse_command, -status of a failure is the ERROR reply code to send. */
typedef enum {
    SHP_OK = 0,
    SHP_ERR_UNKNOWN_OPCODE = -SHP_ERROR_UNKNOWN_OPCODE,
    SHP_ERR_BAD_LENGTH = -SHP_ERROR_BAD_LENGTH,
    SHP_ERR_UNKNOWN_RATE_CODE = -SHP_ERROR_UNKNOWN_RATE_CODE,
    SHP_ERR_UNKNOWN_RANGE_CODE = -SHP_ERROR_UNKNOWN_RANGE_CODE,
    SHP_ERR_BUFFER_TOO_SMALL = -20, /* output buffer shorter than the record                */
    SHP_ERR_INVALID_ARGUMENT = -21  /* NULL pointer, sample count, reserved state or battery */
} shp_status_t;

/* A parsed control command. Only the member named by opcode is meaningful. */
typedef struct {
    uint8_t opcode;                /* enum shp_opcode (commands only)                        */
    uint8_t rate_code;             /* SET_SAMPLE_RATE                                        */
    uint8_t range_code;            /* SET_RANGES                                             */
    uint8_t token;                 /* TIME_SYNC_REQUEST                                      */
    uint64_t host_time_us;         /* TIME_SYNC_REQUEST: echo it in the reply                */
} shp_command_t;

/* ---- info ------------------------------------------------------------------------------ */
#define SHP_INFO_LEN            14u
#define SHP_BATTERY_UNKNOWN     255u
#define SHP_CAP_MAGNETOMETER    0x01u

typedef struct {
    uint8_t fw_major, fw_minor, fw_patch;
    uint8_t sensor_id[6];          /* shown by the hub as 12 hex digits, sensor_id[0] first */
    uint8_t battery_percent;       /* 0..100, or SHP_BATTERY_UNKNOWN                         */
    uint8_t has_mag;
    uint8_t rate_code;             /* current rate code                                      */
    uint8_t range_code;            /* current range code                                     */
} shp_info_t;

/* ---- functions ------------------------------------------------------------------------- */

/* Samples per notification at ATT MTU `mtu` (0 if not even one fits, e.g. 9-axis at MTU < 29). */
size_t shp_max_samples_per_packet(uint16_t mtu, int has_mag);

/* Byte length of a data packet with n samples. */
size_t shp_data_packet_len(uint8_t n_samples, int has_mag);

/*
 * Encode a data packet. `samples` holds n_samples * (6 or 9) counts, interleaved per sample:
 * acc x,y,z, gyr x,y,z[, mag x,y,z]. The clipping bit is hdr->clipping OR "a count equals -32768
 * or 32767". Returns the packet length (> 0) or a negative shp_status_t.
 */
int shp_encode_data_packet(const shp_data_header_t *hdr, const int16_t *samples, uint8_t *out, size_t out_cap);

/* Encode the 14-byte info record. Returns SHP_INFO_LEN or a negative shp_status_t. */
int shp_encode_info(const shp_info_t *info, uint8_t *out, size_t out_cap);

/*
 * Parse a write to the control characteristic. On failure the command is not applied and the
 * firmware should notify shp_encode_error_reply(len ? buf[0] : 0, (uint8_t)-status, ...).
 */
shp_status_t shp_parse_command(const uint8_t *buf, size_t len, shp_command_t *out);

/* Replies notified on the control characteristic. Each returns its length or a negative status. */
int shp_encode_ack(uint8_t acked_opcode, uint8_t *out, size_t out_cap);
int shp_encode_error_reply(uint8_t failed_opcode, uint8_t error_code, uint8_t *out, size_t out_cap);
int shp_encode_time_sync_reply(uint8_t token, uint64_t host_time_us, uint32_t sensor_time_us,
                               uint8_t *out, size_t out_cap);

#ifdef __cplusplus
}
#endif

#endif /* SENSORHUB_PROTOCOL_H */
