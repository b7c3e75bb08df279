/*
 * echo.c — libsluice from C: an engine and a worker in one program.
 *
 * An engine (a sluice server, role engine, dialect v1) listens on a Unix
 * socket; a worker channel connects to it and sends its handshake; the
 * engine invokes three sessions, one after the other, each with a few
 * chunks; the worker echoes every chunk back on its session (forwarding
 * the received payload, no copy) and closes the session; the engine checks
 * the echo. Then everything is freed and each callbacks set is released.
 *
 * Callbacks run on the library's I/O threads (inline delivery, the
 * default); the main thread only waits. Build and run: make c-demo.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sluice.h>

#define SESSIONS 3
static const char *const CHUNKS[] = {"hello", "from", "sluice"};
#define NCHUNKS (sizeof CHUNKS / sizeof CHUNKS[0])
static const char UUID[] = "6d0b4c1e-3f5a-4c8e-9a52-2b7f0e9d1c33";

/* ------------------------------------------------------------------------ */
/* Printing from several threads, and waiting for the end.                  */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int done;          /* the engine has seen every session echoed */
static int released;      /* callbacks sets released (worker, engine, server) */
static int failed;

static void say(const char *who, const char *fmt, ...) {
    va_list ap;
    pthread_mutex_lock(&mu);
    printf("%-7s ", who);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    pthread_mutex_unlock(&mu);
}

static void signal_change(int *counter) {
    pthread_mutex_lock(&mu);
    (*counter)++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static int wait_for(int *counter, int want) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&mu);
    while (*counter < want && !failed)
        if (pthread_cond_timedwait(&cv, &mu, &dl) != 0) break;
    int ok = *counter >= want && !failed;
    pthread_mutex_unlock(&mu);
    return ok;
}

static void fail(const char *who, const char *what, int rc) {
    say(who, "FAILED: %s: %s (%s)", what, sluice_result_name(rc) ? sluice_result_name(rc) : "?", sluice_last_error());
    pthread_mutex_lock(&mu);
    failed = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

#define TRY(who, call)                                  \
    do {                                                \
        int rc_ = (call);                               \
        if (rc_ != SLUICE_OK) fail(who, #call, rc_);    \
    } while (0)

/* ------------------------------------------------------------------------ */
/* The worker: handshake on connect, echo every chunk, close each session.  */

static void worker_connect(void *ud, sluice_channel *ch) {
    (void)ud;
    say("worker", "connected; handshake with uuid %s", UUID);
    TRY("worker", sluice_channel_send_handshake(ch, (const uint8_t *)UUID, strlen(UUID)));
}

static void worker_invoke(void *ud, sluice_channel *ch, uint64_t session, const uint8_t *event, size_t len) {
    (void)ud, (void)ch;
    say("worker", "session %llu: invoke \"%.*s\"", (unsigned long long)session, (int)len, (const char *)event);
}

static void worker_chunk(void *ud, sluice_channel *ch, uint64_t session, const uint8_t *data, size_t len,
                         const sluice_payload *payload) {
    (void)ud;
    say("worker", "session %llu: chunk \"%.*s\" -> echo", (unsigned long long)session, (int)len, (const char *)data);
    /* The payload shares the received bytes: forwarding it copies nothing. */
    TRY("worker", sluice_channel_send_chunk_payload(ch, session, payload));
}

static void worker_choke(void *ud, sluice_channel *ch, uint64_t session) {
    (void)ud;
    say("worker", "session %llu: the engine is done sending; close our side", (unsigned long long)session);
    TRY("worker", sluice_channel_send_choke(ch, session));
}

static void worker_socket_error(void *ud, sluice_channel *ch, int err) {
    (void)ud, (void)ch;
    say("worker", "connection ended: errno %d", err);
}

static void on_release(void *ud) {
    say((const char *)ud, "released: the library will not call it again");
    signal_change(&released);
}

/* ------------------------------------------------------------------------ */
/* The engine: accept, wait for the handshake, run the sessions.           */

typedef struct {
    int session_no;     /* 1..SESSIONS */
    uint64_t session;   /* its id on the wire */
    size_t echoed;      /* chunks echoed back in the current session */
} engine_state;

static engine_state engine;

static void engine_invoke_next(sluice_channel *ch) {
    engine.session_no++;
    engine.echoed = 0;
    TRY("engine", sluice_channel_next_session(ch, &engine.session));
    say("engine", "session %llu: invoke \"echo\" and send %zu chunks", (unsigned long long)engine.session, NCHUNKS);
    TRY("engine", sluice_channel_send_invoke(ch, engine.session, (const uint8_t *)"echo", 4));
    for (size_t i = 0; i < NCHUNKS; i++)
        TRY("engine", sluice_channel_send_chunk(ch, engine.session, (const uint8_t *)CHUNKS[i], strlen(CHUNKS[i])));
    TRY("engine", sluice_channel_send_choke(ch, engine.session));
}

static sluice_channel *engine_channel; /* written under `mu` */

static void engine_connect(void *ud, sluice_channel *ch) {
    (void)ud;
    /* The handle callbacks get is the one sluice_incoming_start returns;
     * keep it from here, since callbacks may run before that call returns. */
    pthread_mutex_lock(&mu);
    engine_channel = ch;
    pthread_mutex_unlock(&mu);
    say("engine", "channel started; waiting for the handshake");
}

static void engine_handshake(void *ud, sluice_channel *ch, const uint8_t *uuid, size_t len) {
    (void)ud;
    say("engine", "handshake from worker %.*s", (int)len, (const char *)uuid);
    engine_invoke_next(ch);
}

static void engine_chunk(void *ud, sluice_channel *ch, uint64_t session, const uint8_t *data, size_t len,
                         const sluice_payload *payload) {
    (void)ud, (void)ch, (void)payload;
    const char *want = engine.echoed < NCHUNKS ? CHUNKS[engine.echoed] : "";
    int ok = session == engine.session && len == strlen(want) && memcmp(data, want, len) == 0;
    say("engine", "session %llu: echo \"%.*s\" %s", (unsigned long long)session, (int)len, (const char *)data,
        ok ? "(matches)" : "(WRONG)");
    if (!ok) fail("engine", "the echo differs", SLUICE_OK);
    engine.echoed++;
}

static void engine_choke(void *ud, sluice_channel *ch, uint64_t session) {
    (void)ud;
    say("engine", "session %llu: the worker closed it after %zu echoes", (unsigned long long)session, engine.echoed);
    if (engine.echoed != NCHUNKS) fail("engine", "chunks missing", SLUICE_OK);
    if (engine.session_no < SESSIONS) engine_invoke_next(ch);
    else signal_change(&done);
}

static void engine_socket_error(void *ud, sluice_channel *ch, int err) {
    (void)ud, (void)ch;
    say("engine", "connection ended: errno %d", err);
}

static void on_accept(void *ud, sluice_server *server, sluice_incoming *incoming) {
    (void)ud, (void)server;
    static const sluice_callbacks cbs = {
        .on_connect = engine_connect,
        .on_handshake = engine_handshake,
        .on_chunk = engine_chunk,
        .on_choke = engine_choke,
        .on_socket_error = engine_socket_error,
        .on_release = on_release,
    };
    say("server", "accepted a connection");
    sluice_channel *ch = NULL;
    TRY("server", sluice_incoming_start(incoming, &cbs, (void *)"engine", &ch));
}

/* ------------------------------------------------------------------------ */

int main(void) {
    printf("libsluice %s (header %d.%d.%d)\n", sluice_version(), SLUICE_VERSION_MAJOR, SLUICE_VERSION_MINOR,
           SLUICE_VERSION_PATCH);

    char endpoint[128];
    snprintf(endpoint, sizeof endpoint, "unix:/tmp/sluice-echo-%d.sock", (int)getpid());

    /* The engine side: v1, role engine for every accepted channel. */
    sluice_options *opts = sluice_options_new();
    sluice_options_set_dialect(opts, SLUICE_DIALECT_V1);
    sluice_options_set_role(opts, SLUICE_ROLE_ENGINE);
    static const sluice_server_callbacks server_cbs = {.on_accept = on_accept, .on_release = on_release};
    sluice_server *server = NULL;
    int rc = sluice_server_bind(endpoint, opts, &server_cbs, (void *)"server", &server);
    if (rc != SLUICE_OK) {
        fprintf(stderr, "bind %s: %s\n", endpoint, sluice_last_error());
        return 1;
    }
    say("server", "listening on %s", endpoint);

    /* The worker side: v1, role worker. */
    sluice_options_set_role(opts, SLUICE_ROLE_WORKER);
    static const sluice_callbacks worker_cbs = {
        .on_connect = worker_connect,
        .on_invoke = worker_invoke,
        .on_chunk = worker_chunk,
        .on_choke = worker_choke,
        .on_socket_error = worker_socket_error,
        .on_release = on_release,
    };
    sluice_channel *worker = NULL;
    rc = sluice_channel_connect(endpoint, opts, &worker_cbs, (void *)"worker", &worker);
    sluice_options_free(opts); /* copied by the calls above */
    if (rc != SLUICE_OK) {
        fprintf(stderr, "connect %s: %s\n", endpoint, sluice_last_error());
        return 1;
    }

    int ok = wait_for(&done, 1);
    say("main", ok ? "all %d sessions echoed; closing" : "FAILED before the end (%d sessions)", SESSIONS);

    pthread_mutex_lock(&mu);
    sluice_channel *engine_ch = engine_channel;
    pthread_mutex_unlock(&mu);
    sluice_channel_free(worker);          /* graceful close, then release */
    sluice_channel_free(engine_ch);       /* NULL (a no-op) if it never started */
    sluice_server_free(server);           /* also removes the socket file */
    ok = wait_for(&released, 3) && ok;
    say("main", ok ? "done" : "FAILED");
    return ok ? 0 : 1;
}
