/*
 * sensorhub_protocol.c - sensor side of the sensorhub BLE wire protocol, version 1.
 * See sensorhub_protocol.h and firmware_protocol/PROTOCOL.md.
 *
 * Bytes are assembled with shifts, never by copying structs or native integers, so the output is
 * the same on little- and big-endian CPUs and no packing pragmas are needed.
 */
#include "sensorhub_protocol.h"

#include <string.h>

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    put_u16(p, (uint16_t)(v & 0xFFFFu));
    put_u16(p + 2, (uint16_t)(v >> 16));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v & 0xFFFFFFFFu));
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; --i) {
        v = (v << 8) | p[i];
    }
    return v;
}

size_t shp_max_samples_per_packet(uint16_t mtu, int has_mag)
{
    size_t stride = (has_mag ? SHP_AXES_9 : SHP_AXES_6) * 2u;
    size_t n;
    if (mtu < SHP_ATT_OVERHEAD + SHP_DATA_HEADER_LEN) {
        return 0;
    }
    n = ((size_t)mtu - SHP_ATT_OVERHEAD - SHP_DATA_HEADER_LEN) / stride;
    return n > SHP_MAX_SAMPLES ? SHP_MAX_SAMPLES : n;
}

size_t shp_data_packet_len(uint8_t n_samples, int has_mag)
{
    return SHP_DATA_HEADER_LEN + (size_t)n_samples * (has_mag ? SHP_AXES_9 : SHP_AXES_6) * 2u;
}

int shp_encode_data_packet(const shp_data_header_t *hdr, const int16_t *samples, uint8_t *out, size_t out_cap)
{
    size_t n_values, len, i;
    unsigned clipping;
    uint16_t descriptor;

    if (hdr == NULL || samples == NULL || out == NULL) {
        return SHP_ERR_INVALID_ARGUMENT;
    }
    if (hdr->n_samples < 1u || hdr->n_samples > SHP_MAX_SAMPLES || hdr->sensor_state > SHP_STATE_DEGRADED) {
        return SHP_ERR_INVALID_ARGUMENT;
    }
    if (hdr->rate_code >= SHP_RATE_CODE_COUNT) {
        return SHP_ERR_UNKNOWN_RATE_CODE;
    }
    if (hdr->range_code >= SHP_RANGE_CODE_COUNT) {
        return SHP_ERR_UNKNOWN_RANGE_CODE;
    }
    len = shp_data_packet_len(hdr->n_samples, hdr->has_mag);
    if (out_cap < len) {
        return SHP_ERR_BUFFER_TOO_SMALL;
    }

    n_values = (size_t)hdr->n_samples * (hdr->has_mag ? SHP_AXES_9 : SHP_AXES_6);
    clipping = hdr->clipping ? 1u : 0u;
    for (i = 0; i < n_values; ++i) {
        uint8_t *p = out + SHP_DATA_HEADER_LEN + 2u * i;
        int16_t v = samples[i];
        if (v == INT16_MIN || v == INT16_MAX) {
            clipping = 1u;
        }
        /* two's complement bit pattern, little-endian */
        put_u16(p, (uint16_t)v);
    }

    descriptor = (uint16_t)((SHP_PROTOCOL_VERSION << 14) | ((unsigned)(hdr->n_samples - 1u) << 10) |
                            ((hdr->has_mag ? 1u : 0u) << 9) | (clipping << 8) |
                            ((unsigned)hdr->sensor_state << 6) | ((unsigned)hdr->rate_code << 3) |
                            (unsigned)hdr->range_code);
    put_u16(out, descriptor);
    put_u16(out + 2, hdr->seq);
    put_u32(out + 4, hdr->t_first_us);
    return (int)len;
}

int shp_encode_info(const shp_info_t *info, uint8_t *out, size_t out_cap)
{
    if (info == NULL || out == NULL) {
        return SHP_ERR_INVALID_ARGUMENT;
    }
    if (info->battery_percent > 100u && info->battery_percent != SHP_BATTERY_UNKNOWN) {
        return SHP_ERR_INVALID_ARGUMENT;
    }
    if (info->rate_code >= SHP_RATE_CODE_COUNT) {
        return SHP_ERR_UNKNOWN_RATE_CODE;
    }
    if (info->range_code >= SHP_RANGE_CODE_COUNT) {
        return SHP_ERR_UNKNOWN_RANGE_CODE;
    }
    if (out_cap < SHP_INFO_LEN) {
        return SHP_ERR_BUFFER_TOO_SMALL;
    }
    out[0] = (uint8_t)SHP_PROTOCOL_VERSION;
    out[1] = info->fw_major;
    out[2] = info->fw_minor;
    out[3] = info->fw_patch;
    memcpy(out + 4, info->sensor_id, sizeof info->sensor_id);
    out[10] = info->battery_percent;
    out[11] = info->has_mag ? (uint8_t)SHP_CAP_MAGNETOMETER : 0u;
    out[12] = info->rate_code;
    out[13] = info->range_code;
    return (int)SHP_INFO_LEN;
}

shp_status_t shp_parse_command(const uint8_t *buf, size_t len, shp_command_t *out)
{
    size_t expected;
    if (out == NULL || (buf == NULL && len > 0u)) {
        return SHP_ERR_INVALID_ARGUMENT;
    }
    memset(out, 0, sizeof *out);
    if (len == 0u) {
        return SHP_ERR_BAD_LENGTH;
    }
    switch (buf[0]) {
    case SHP_OP_START_STREAMING:
    case SHP_OP_STOP_STREAMING:
        expected = 1u;
        break;
    case SHP_OP_SET_SAMPLE_RATE:
    case SHP_OP_SET_RANGES:
        expected = 2u;
        break;
    case SHP_OP_TIME_SYNC_REQUEST:
        expected = 10u;
        break;
    default:
        return SHP_ERR_UNKNOWN_OPCODE;
    }
    if (len != expected) {
        return SHP_ERR_BAD_LENGTH;
    }
    out->opcode = buf[0];
    switch (buf[0]) {
    case SHP_OP_SET_SAMPLE_RATE:
        if (buf[1] >= SHP_RATE_CODE_COUNT) {
            return SHP_ERR_UNKNOWN_RATE_CODE;
        }
        out->rate_code = buf[1];
        break;
    case SHP_OP_SET_RANGES:
        if (buf[1] >= SHP_RANGE_CODE_COUNT) {
            return SHP_ERR_UNKNOWN_RANGE_CODE;
        }
        out->range_code = buf[1];
        break;
    case SHP_OP_TIME_SYNC_REQUEST:
        out->token = buf[1];
        out->host_time_us = get_u64(buf + 2);
        break;
    default:
        break;
    }
    return SHP_OK;
}

int shp_encode_ack(uint8_t acked_opcode, uint8_t *out, size_t out_cap)
{
    if (out == NULL || acked_opcode < SHP_OP_START_STREAMING || acked_opcode > SHP_OP_TIME_SYNC_REQUEST) {
        return SHP_ERR_INVALID_ARGUMENT;
    }
    if (out_cap < SHP_ACK_LEN) {
        return SHP_ERR_BUFFER_TOO_SMALL;
    }
    out[0] = (uint8_t)SHP_OP_ACK;
    out[1] = acked_opcode;
    return (int)SHP_ACK_LEN;
}

int shp_encode_error_reply(uint8_t failed_opcode, uint8_t error_code, uint8_t *out, size_t out_cap)
{
    if (out == NULL || error_code < SHP_ERROR_UNKNOWN_OPCODE || error_code > SHP_ERROR_HARDWARE_FAULT) {
        return SHP_ERR_INVALID_ARGUMENT;
    }
    if (out_cap < SHP_ERROR_REPLY_LEN) {
        return SHP_ERR_BUFFER_TOO_SMALL;
    }
    out[0] = (uint8_t)SHP_OP_ERROR;
    out[1] = failed_opcode;
    out[2] = error_code;
    return (int)SHP_ERROR_REPLY_LEN;
}

int shp_encode_time_sync_reply(uint8_t token, uint64_t host_time_us, uint32_t sensor_time_us,
                               uint8_t *out, size_t out_cap)
{
    if (out == NULL) {
        return SHP_ERR_INVALID_ARGUMENT;
    }
    if (out_cap < SHP_TIME_SYNC_REPLY_LEN) {
        return SHP_ERR_BUFFER_TOO_SMALL;
    }
    out[0] = (uint8_t)SHP_OP_TIME_SYNC_REPLY;
    out[1] = token;
    put_u64(out + 2, host_time_us);
    put_u32(out + 10, sensor_time_us);
    return (int)SHP_TIME_SYNC_REPLY_LEN;
}
