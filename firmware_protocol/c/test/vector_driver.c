/*
 * vector_driver.c - test driver for sensorhub_protocol.c (used by tests/test_protocol_c.py).
 *
 * Reads one request per line on stdin and answers one line on stdout, so the Python test can
 * feed it every golden vector's inputs without a JSON parser in C:
 *
 *   D seq t_first_us rate range state clipping has_mag n v0 v1 ...   -> packet hex | ERR status
 *   I major minor patch id_hex12 battery has_mag rate range          -> info hex   | ERR status
 *   C hex|-                                                          -> OK opcode rate range token host | ERR status
 *   A opcode | E opcode code | T token host_us sensor_us             -> reply hex  | ERR status
 *   M mtu has_mag                                                    -> samples per packet
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sensorhub_protocol.h"

static void print_result(int len, const uint8_t *buf)
{
    int i;
    if (len < 0) {
        printf("ERR %d\n", len);
        return;
    }
    for (i = 0; i < len; ++i) {
        printf("%02x", buf[i]);
    }
    printf("\n");
}

static int hex_to_bytes(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2u, i;
    if (strcmp(hex, "-") == 0) {
        return 0;
    }
    if (n > cap) {
        return -1;
    }
    for (i = 0; i < n; ++i) {
        unsigned v;
        if (sscanf(hex + 2u * i, "%2x", &v) != 1) {
            return -1;
        }
        out[i] = (uint8_t)v;
    }
    return (int)n;
}

int main(void)
{
    char kind[4];
    uint8_t buf[512];
    while (scanf("%3s", kind) == 1) {
        if (strcmp(kind, "D") == 0) {
            shp_data_header_t h;
            unsigned long seq, t;
            unsigned rate, range, state, clip, mag, n, i;
            int16_t samples[SHP_MAX_SAMPLES * SHP_AXES_9 + 1];
            if (scanf("%lu %lu %u %u %u %u %u %u", &seq, &t, &rate, &range, &state, &clip, &mag, &n) != 8) {
                return 2;
            }
            for (i = 0; i < n * (mag ? 9u : 6u) && i < sizeof samples / sizeof samples[0]; ++i) {
                int v;
                if (scanf("%d", &v) != 1) {
                    return 2;
                }
                samples[i] = (int16_t)v;
            }
            h.seq = (uint16_t)seq;
            h.t_first_us = (uint32_t)t;
            h.rate_code = (uint8_t)rate;
            h.range_code = (uint8_t)range;
            h.sensor_state = (uint8_t)state;
            h.clipping = (uint8_t)clip;
            h.has_mag = (uint8_t)mag;
            h.n_samples = (uint8_t)n;
            print_result(shp_encode_data_packet(&h, samples, buf, sizeof buf), buf);
        } else if (strcmp(kind, "I") == 0) {
            shp_info_t info;
            unsigned major, minor, patch, battery, mag, rate, range;
            char id_hex[16];
            if (scanf("%u %u %u %15s %u %u %u %u", &major, &minor, &patch, id_hex, &battery, &mag, &rate, &range) != 8 ||
                hex_to_bytes(id_hex, info.sensor_id, sizeof info.sensor_id) != 6) {
                return 2;
            }
            info.fw_major = (uint8_t)major;
            info.fw_minor = (uint8_t)minor;
            info.fw_patch = (uint8_t)patch;
            info.battery_percent = (uint8_t)battery;
            info.has_mag = (uint8_t)mag;
            info.rate_code = (uint8_t)rate;
            info.range_code = (uint8_t)range;
            print_result(shp_encode_info(&info, buf, sizeof buf), buf);
        } else if (strcmp(kind, "C") == 0) {
            char hex[1100];
            shp_command_t cmd;
            shp_status_t st;
            int len;
            if (scanf("%1099s", hex) != 1 || (len = hex_to_bytes(hex, buf, sizeof buf)) < 0) {
                return 2;
            }
            st = shp_parse_command(buf, (size_t)len, &cmd);
            if (st != SHP_OK) {
                printf("ERR %d\n", (int)st);
            } else {
                printf("OK %u %u %u %u %llu\n", cmd.opcode, cmd.rate_code, cmd.range_code, cmd.token,
                       (unsigned long long)cmd.host_time_us);
            }
        } else if (strcmp(kind, "A") == 0) {
            unsigned op;
            if (scanf("%u", &op) != 1) {
                return 2;
            }
            print_result(shp_encode_ack((uint8_t)op, buf, sizeof buf), buf);
        } else if (strcmp(kind, "E") == 0) {
            unsigned op, code;
            if (scanf("%u %u", &op, &code) != 2) {
                return 2;
            }
            print_result(shp_encode_error_reply((uint8_t)op, (uint8_t)code, buf, sizeof buf), buf);
        } else if (strcmp(kind, "T") == 0) {
            unsigned token;
            unsigned long long host;
            unsigned long sensor;
            if (scanf("%u %llu %lu", &token, &host, &sensor) != 3) {
                return 2;
            }
            print_result(shp_encode_time_sync_reply((uint8_t)token, (uint64_t)host, (uint32_t)sensor, buf, sizeof buf),
                         buf);
        } else if (strcmp(kind, "M") == 0) {
            unsigned mtu, mag;
            if (scanf("%u %u", &mtu, &mag) != 2) {
                return 2;
            }
            printf("%lu\n", (unsigned long)shp_max_samples_per_packet((uint16_t)mtu, (int)mag));
        } else {
            return 2;
        }
        fflush(stdout);
    }
    return 0;
}
