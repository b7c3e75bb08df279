/*
 * A Cocaine service written in C, attached to a sluice Locator over the
 * program's own connection (no listening socket of its own):
 *
 *   service --locator HOST:PORT --name NAME
 *
 * Methods of NAME (version 1):
 *   ping(args...)  primitive: answers value(args...) unchanged;
 *   count(n)       streaming: writes [0], [1], ... [n-1], then close;
 *   fail()         answers error([42, 7], "failed on request").
 *
 * Prints "ready NAME" once attached, then serves until its standard input
 * reaches end of file, detaches and exits 0. Errors: one line on stderr,
 * exit 1. Build: make c-service (target/c/service).
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sluice.h>

/* Handlers run on a library thread: they must not block. A responder may be
 * answered later from any thread, then freed. */

static void ping(void *ud, sluice_responder *r, const char *method, const uint8_t *args, size_t len) {
    (void)ud;
    (void)method;
    sluice_responder_value(r, args, len);
    sluice_responder_free(r);
}

/* Reads count's argument: a msgpack array of one unsigned integer. */
static int read_count(const uint8_t *a, size_t len, uint64_t *n) {
    if (len < 2 || a[0] != 0x91) return -1;
    const uint8_t *p = a + 1;
    size_t rest = len - 1, width;
    if (p[0] < 0x80) {
        *n = p[0];
        return rest == 1 ? 0 : -1;
    }
    switch (p[0]) {
    case 0xcc: width = 1; break;
    case 0xcd: width = 2; break;
    case 0xce: width = 4; break;
    case 0xcf: width = 8; break;
    default: return -1;
    }
    if (rest != 1 + width) return -1;
    *n = 0;
    for (size_t i = 0; i < width; i++) *n = (*n << 8) | p[1 + i];
    return 0;
}

/* [i] in msgpack: a one-element array of an unsigned integer. */
static size_t write_index(uint8_t *out, uint64_t i) {
    out[0] = 0x91;
    if (i < 0x80) {
        out[1] = (uint8_t)i;
        return 2;
    }
    out[1] = 0xcf;
    for (int k = 0; k < 8; k++) out[2 + k] = (uint8_t)(i >> (56 - 8 * k));
    return 10;
}

/* The rest of a count the send queue could not take at once (back-pressure):
 * written from a thread of ours, which may wait. */
typedef struct {
    sluice_responder *r;
    uint64_t next, n;
} rest;

static void *count_rest(void *p) {
    rest *job = p;
    uint8_t item[10];
    int rc = SLUICE_OK;
    while (job->next < job->n && (rc == SLUICE_OK || rc == SLUICE_E_WOULD_BLOCK)) {
        rc = sluice_responder_write(job->r, item, write_index(item, job->next));
        if (rc == SLUICE_OK) job->next++;
        else if (rc == SLUICE_E_WOULD_BLOCK) nanosleep(&(struct timespec){0, 1000000L}, NULL);
    }
    if (rc == SLUICE_OK) sluice_responder_close(job->r);
    sluice_responder_free(job->r);
    free(job);
    return NULL;
}

static void count(void *ud, sluice_responder *r, const char *method, const uint8_t *args, size_t len) {
    (void)ud;
    (void)method;
    uint64_t n, i = 0;
    if (read_count(args, len, &n) != 0) {
        sluice_responder_error(r, 7, 2, "count(n): n must be an unsigned integer");
        sluice_responder_free(r);
        return;
    }
    uint8_t item[10];
    int rc = SLUICE_OK;
    for (; i < n; i++)
        if ((rc = sluice_responder_write(r, item, write_index(item, i))) != SLUICE_OK) break;
    if (rc == SLUICE_E_WOULD_BLOCK) {
        rest *job = malloc(sizeof *job);
        pthread_t t;
        if (job) {
            *job = (rest){r, i, n};
            if (pthread_create(&t, NULL, count_rest, job) == 0) {
                pthread_detach(t);
                return;
            }
            free(job);
        }
    }
    if (rc == SLUICE_OK) sluice_responder_close(r);
    /* Otherwise (the caller is gone) freeing answers an error if it can. */
    sluice_responder_free(r);
}

static void fail(void *ud, sluice_responder *r, const char *method, const uint8_t *args, size_t len) {
    (void)ud;
    (void)method;
    (void)args;
    (void)len;
    sluice_responder_error(r, 42, 7, "failed on request");
    sluice_responder_free(r);
}

static int usage(const char *why) {
    fprintf(stderr, "service: %s (usage: service --locator HOST:PORT --name NAME)\n", why);
    return 1;
}

int main(int argc, char **argv) {
    const char *locator = NULL, *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--locator") == 0) locator = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--name") == 0) name = argv[++i];
        else return usage("unexpected argument");
    }
    if (!locator || !*locator) return usage("--locator is required");
    if (!name || !*name) return usage("--name is required");

    sluice_locator *loc = NULL;
    sluice_service_def *def = NULL;
    if (sluice_locator_new(locator, &loc) != SLUICE_OK || sluice_service_def_new(name, 1, &def) != SLUICE_OK) {
        fprintf(stderr, "service: %s\n", sluice_last_error());
        sluice_locator_free(loc);
        return 1;
    }
    sluice_handler h = {sizeof h, ping, NULL};
    sluice_service_def_add(def, "ping", SLUICE_METHOD_PRIMITIVE, &h, NULL);
    h.on_call = count;
    sluice_service_def_add(def, "count", SLUICE_METHOD_STREAMING, &h, NULL);
    h.on_call = fail;
    sluice_service_def_add(def, "fail", SLUICE_METHOD_PRIMITIVE, &h, NULL);

    sluice_attached *att = NULL;
    int rc = sluice_locator_attach(loc, def, 10000, &att);
    sluice_service_def_free(def);
    sluice_locator_free(loc);
    if (rc != SLUICE_OK) {
        fprintf(stderr, "service: cannot attach %s to %s: %s\n", name, locator, sluice_last_error());
        return 1;
    }
    printf("ready %s\n", name);
    fflush(stdout);

    char buf[256];
    while (read(0, buf, sizeof buf) > 0) {
    }
    sluice_attached_free(att);
    return 0;
}
