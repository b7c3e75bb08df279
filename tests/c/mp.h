/*
 * Helpers of the service tests: a tiny msgpack writer for arguments, the
 * readable text of msgpack (sluice_msgpack_text), waiting on a condition,
 * and checks of service errors.
 */
#ifndef SLUICE_TEST_MP_H
#define SLUICE_TEST_MP_H

#include "harness.h"

typedef struct {
    uint8_t b[512];
    size_t n;
} mp;

HELPER void mp_byte(mp *m, uint8_t v) {
    if (m->n == sizeof m->b) FAILF("msgpack buffer full");
    m->b[m->n++] = v;
}

/* An array header of n items (n < 16). */
HELPER mp *mp_array(mp *m, unsigned n) {
    mp_byte(m, (uint8_t)(0x90 | n));
    return m;
}

HELPER mp *mp_map(mp *m, unsigned n) {
    mp_byte(m, (uint8_t)(0x80 | n));
    return m;
}

HELPER mp *mp_uint(mp *m, uint64_t v) {
    if (v < 0x80) {
        mp_byte(m, (uint8_t)v);
    } else {
        mp_byte(m, 0xcf);
        for (int k = 0; k < 8; k++) mp_byte(m, (uint8_t)(v >> (56 - 8 * k)));
    }
    return m;
}

/* A string of fewer than 32 bytes. */
HELPER mp *mp_str(mp *m, const char *s) {
    size_t n = strlen(s);
    if (n >= 32) FAILF("mp_str: too long");
    mp_byte(m, (uint8_t)(0xa0 | n));
    for (size_t i = 0; i < n; i++) mp_byte(m, (uint8_t)s[i]);
    return m;
}

/* The readable text of msgpack bytes, in a rotating static buffer. */
HELPER const char *mp_text(const uint8_t *b, size_t n) {
    static char bufs[4][2048];
    static int k;
    char *out = bufs[k++ % 4];
    CHECK_OK(sluice_msgpack_text(b, n, out, sizeof bufs[0], NULL));
    return out;
}

#define CHECK_TEXT(b, n, want)                                                   \
    do {                                                                         \
        const char *got_ = mp_text((b), (n));                                    \
        if (strcmp(got_, (want)) != 0) FAILF("got %s, want %s", got_, (want));   \
    } while (0)

/* Checks that the last error is a service error [cat, code] with this message. */
#define CHECK_SERVICE_ERROR(cat, code_, msg)                                                                  \
    do {                                                                                                      \
        int has_ = 0;                                                                                         \
        int64_t c_ = -1, k_ = -1;                                                                             \
        const char *m_ = NULL;                                                                                \
        CHECK_OK(sluice_last_service_error(&has_, &c_, &k_, &m_));                                            \
        if (!has_ || c_ != (cat) || k_ != (code_) || strcmp(m_, (msg)) != 0)                                  \
            FAILF("service error [%lld, %lld] %s, want [%d, %d] %s", (long long)c_, (long long)k_, m_, (cat), \
                  (code_), (msg));                                                                            \
    } while (0)

#define WAIT_UNTIL(cond)                                                                 \
    do {                                                                                 \
        int64_t end_ = now_ms() + timeout_ms();                                          \
        while (!(cond)) {                                                                \
            if (now_ms() > end_) FAILF("waited %d ms for %s", timeout_ms(), #cond);      \
            sleep_ms(5);                                                                 \
        }                                                                                \
    } while (0)

/* Whether the registry lists `name` with online == want (-1: not listed). */
HELPER int registry_online(sluice_registry *reg, const char *name) {
    sluice_entry *e = NULL;
    if (sluice_registry_get(reg, name, &e) != SLUICE_OK) return -1;
    int on = e->online;
    sluice_entries_free(e, 1);
    return on;
}

#endif
