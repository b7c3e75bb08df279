/*
 * worker.c — a Cocaine worker in C on libsluice's sluice_worker.
 *
 * The engine starts it with the runtime's arguments:
 *
 *     worker --app NAME --uuid UUID --endpoint PATH [--protocol 1] [--locator HOST:PORT]
 *
 * It connects to the engine's socket and handshakes (the library heartbeats
 * and disowns a silent engine by itself), echoes every chunk of every
 * session back on that session, closes a session once the engine has
 * closed its side, and answers the engine's terminate with its own, then
 * exits 0. If the connection ends otherwise (the engine went away, or fell
 * silent and the worker disowned it) it exits 1.
 *
 * Delivery is poll mode: the callbacks run here, on the main thread, in
 * sluice_worker_dispatch, whenever sluice_worker_fd is readable.
 *
 * Build: make c-worker (then target/c/worker), or against an installed
 * libsluice: cc worker.c $(pkg-config --cflags --libs sluice) -o worker
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sluice.h>

static int finished; /* 1: terminated, exit 0; 2: connection lost, exit 1 */
static char uuid[128];
static atomic_int released; /* the library is done with the worker (may be set on an I/O thread) */

static void on_connect(void *ud, sluice_worker *w) {
    (void)ud;
    (void)w;
    fprintf(stderr, "worker %s: connected\n", uuid);
}

static void on_chunk(void *ud, sluice_worker *w, uint64_t session, const uint8_t *data, size_t len, const sluice_payload *p) {
    (void)ud;
    (void)data;
    (void)len;
    /* Echo the received bytes as they are: the payload is forwarded, not copied. */
    int rc = sluice_worker_stream_write_payload(w, session, p);
    if (rc != SLUICE_OK) fprintf(stderr, "worker %s: echo on %llu: %s\n", uuid, (unsigned long long)session, sluice_last_error());
}

static void on_close(void *ud, sluice_worker *w, uint64_t session) {
    (void)ud;
    int rc = sluice_worker_stream_close(w, session);
    if (rc != SLUICE_OK) fprintf(stderr, "worker %s: close %llu: %s\n", uuid, (unsigned long long)session, sluice_last_error());
}

static void on_error(void *ud, sluice_worker *w, uint64_t session, int has_category, int64_t category, int64_t code,
                     const uint8_t *msg, size_t len) {
    (void)ud;
    (void)has_category;
    (void)category;
    fprintf(stderr, "worker %s: session %llu failed by the engine: %lld %.*s\n", uuid, (unsigned long long)session,
            (long long)code, (int)len, msg ? (const char *)msg : "");
    /* Our side ends too. */
    sluice_worker_stream_close(w, session);
}

static void on_terminate(void *ud, sluice_worker *w, int64_t code, const uint8_t *reason, size_t len) {
    (void)ud;
    fprintf(stderr, "worker %s: terminate %lld %.*s\n", uuid, (long long)code, (int)len, (const char *)reason);
    static const char bye[] = "worker shut down";
    sluice_worker_terminate(w, code, (const uint8_t *)bye, sizeof bye - 1);
    finished = 1;
}

static void on_disown(void *ud, sluice_worker *w) {
    (void)ud;
    (void)w;
    fprintf(stderr, "worker %s: the engine is silent: disowned\n", uuid);
}

static void on_disconnected(void *ud, sluice_worker *w, int err, const uint64_t *sessions, size_t n) {
    (void)ud;
    (void)w;
    (void)sessions;
    fprintf(stderr, "worker %s: connection ended: errno %d, %zu sessions lost\n", uuid, err, n);
    finished = 2;
}

static void on_release(void *ud) {
    (void)ud;
    atomic_store(&released, 1);
}

int main(int argc, char **argv) {
    sluice_worker_options *opts = NULL;
    if (sluice_worker_options_from_args(argc, argv, &opts) != SLUICE_OK) {
        fprintf(stderr, "usage: %s --app NAME --uuid UUID --endpoint PATH [--protocol 1] [--locator HOST:PORT]\n%s\n", argv[0],
                sluice_last_error());
        return 2;
    }
    sluice_worker_options_get(opts, SLUICE_WORKER_UUID, uuid, sizeof uuid, NULL);
    sluice_options *ch = sluice_options_new();
    sluice_options_set_delivery(ch, SLUICE_DELIVERY_POLL);
    sluice_worker_options_set_channel(opts, ch);
    sluice_options_free(ch);

    sluice_worker_callbacks cbs;
    memset(&cbs, 0, sizeof cbs);
    cbs.size = sizeof cbs;
    cbs.on_connect = on_connect;
    cbs.on_chunk = on_chunk;
    cbs.on_close = on_close;
    cbs.on_error = on_error;
    cbs.on_terminate = on_terminate;
    cbs.on_disown = on_disown;
    cbs.on_disconnected = on_disconnected;
    cbs.on_release = on_release;
    sluice_worker *w = NULL;
    int rc = sluice_worker_connect(opts, &cbs, NULL, &w);
    sluice_worker_options_free(opts);
    if (rc != SLUICE_OK) {
        fprintf(stderr, "worker: connect: %s\n", sluice_last_error());
        return 1;
    }

    struct pollfd p = {sluice_worker_fd(w), POLLIN, 0};
    while (!finished) {
        if (poll(&p, 1, 1000) < 0 && errno != EINTR) {
            perror("poll");
            break;
        }
        if (sluice_worker_dispatch(w, SIZE_MAX, NULL) != SLUICE_OK) {
            fprintf(stderr, "worker: dispatch: %s\n", sluice_last_error());
            break;
        }
    }
    /* Freeing closes gracefully: what is queued (the terminate answer) is
       written, then the connection is shut down and on_release runs. Wait
       for that (at most 5 s) before the process exits. */
    sluice_worker_free(w);
    for (int i = 0; i < 5000 && !atomic_load(&released); i++) nanosleep(&(struct timespec){0, 1000000}, NULL);
    return finished == 1 ? 0 : 1;
}
