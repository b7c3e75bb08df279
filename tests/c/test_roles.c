/*
 * The protocol roles from C: a sluice_worker against a sluice_engine over a
 * Unix socket in both dialects (v1 with inline delivery, v0 with poll
 * delivery dispatched on this thread) — handshake, 250 sessions with chunks
 * both ways, errors, a session the worker ends early, heartbeats, terminate
 * from the engine and from the worker, a refused uuid; a worker disowning
 * an engine that stops answering (a raw sluice server that ignores
 * frames); the engine cutting a worker that never handshakes; worker
 * options from argv; sized callbacks structs.
 */
#include "harness.h"

#define B(s) (const uint8_t *)(s), (sizeof(s) - 1)
#define NS 250

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void bump(int *field) {
    pthread_mutex_lock(&mu);
    (*field)++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* ------------------------------------------------------------------------ */
/* Waiting: poll-mode objects are dispatched on this thread meanwhile.      */

static sluice_worker *polled_workers[4];
static sluice_engine *polled_engine;

static int field_at_least(int *field, int want) {
    pthread_mutex_lock(&mu);
    int ok = *field >= want;
    pthread_mutex_unlock(&mu);
    return ok;
}

static void pump_once(int ms) {
    struct pollfd p[5];
    int n = 0;
    for (int i = 0; i < 4; i++)
        if (polled_workers[i] && sluice_worker_fd(polled_workers[i]) >= 0)
            p[n++] = (struct pollfd){sluice_worker_fd(polled_workers[i]), POLLIN, 0};
    if (polled_engine && sluice_engine_fd(polled_engine) >= 0) p[n++] = (struct pollfd){sluice_engine_fd(polled_engine), POLLIN, 0};
    if (n == 0) {
        sleep_ms(1);
        return;
    }
    if (poll(p, (nfds_t)n, ms) <= 0) return;
    for (int i = 0; i < 4; i++)
        if (polled_workers[i] && sluice_worker_fd(polled_workers[i]) >= 0) CHECK_OK(sluice_worker_dispatch(polled_workers[i], SIZE_MAX, NULL));
    if (polled_engine && sluice_engine_fd(polled_engine) >= 0) CHECK_OK(sluice_engine_dispatch(polled_engine, SIZE_MAX, NULL));
}

#define WAIT_FOR(field, want)                                                               \
    do {                                                                                    \
        int64_t end_ = now_ms() + timeout_ms();                                             \
        while (!field_at_least(&(field), (want))) {                                         \
            if (now_ms() > end_) FAILF("waited for %s >= %d, got %d", #field, (want), (field)); \
            pump_once(5);                                                                   \
        }                                                                                   \
    } while (0)

/* ------------------------------------------------------------------------ */
/* The engine side.                                                          */

typedef struct {
    int dialect;
    int handshakes, rejected, heartbeats, closed, failed, terminates, gone, released, bad;
    uint64_t worker;
    char uuid[64], rejected_uuid[64], term_reason[64];
    int64_t term_code;
    int gone_err;
    uint64_t gone_worker;
    uint64_t sessions[NS];
    char replies[NS][64];
    char why[256];
} engine_state;

static int session_index(engine_state *st, uint64_t session) {
    for (int i = 0; i < NS; i++)
        if (st->sessions[i] == session) return i;
    return -1;
}

static void e_bad(engine_state *st, const char *why) {
    pthread_mutex_lock(&mu);
    if (!st->bad) snprintf(st->why, sizeof st->why, "%s", why);
    st->bad++;
    pthread_mutex_unlock(&mu);
}

static void e_handshake(void *ud, sluice_engine *e, uint64_t worker, const uint8_t *uuid, size_t len) {
    engine_state *st = ud;
    (void)e;
    pthread_mutex_lock(&mu);
    st->worker = worker;
    snprintf(st->uuid, sizeof st->uuid, "%.*s", (int)len, (const char *)uuid);
    pthread_mutex_unlock(&mu);
    bump(&st->handshakes);
}

static void e_rejected(void *ud, sluice_engine *e, const uint8_t *uuid, size_t len) {
    engine_state *st = ud;
    (void)e;
    pthread_mutex_lock(&mu);
    snprintf(st->rejected_uuid, sizeof st->rejected_uuid, "%.*s", (int)len, (const char *)uuid);
    pthread_mutex_unlock(&mu);
    bump(&st->rejected);
}

static void e_heartbeat(void *ud, sluice_engine *e, uint64_t worker) {
    (void)e;
    (void)worker;
    bump(&((engine_state *)ud)->heartbeats);
}

static void e_chunk(void *ud, sluice_engine *e, uint64_t worker, uint64_t session, const uint8_t *data, size_t len,
                    const sluice_payload *p) {
    engine_state *st = ud;
    (void)e;
    (void)worker;
    if (sluice_payload_data(p) != data || sluice_payload_len(p) != len) e_bad(st, "payload differs from data");
    pthread_mutex_lock(&mu);
    int i = session_index(st, session);
    if (i >= 0) {
        char *r = st->replies[i];
        size_t used = strlen(r);
        snprintf(r + used, sizeof st->replies[i] - used, "%s%.*s", used ? "|" : "", (int)len, (const char *)data);
    }
    pthread_mutex_unlock(&mu);
    if (i < 0) e_bad(st, "chunk on an unknown session");
}

static void e_close(void *ud, sluice_engine *e, uint64_t worker, uint64_t session) {
    engine_state *st = ud;
    (void)e;
    (void)worker;
    pthread_mutex_lock(&mu);
    int i = session_index(st, session);
    char want[64] = "";
    if (i >= 0 && i % 10 != 5)
        snprintf(want, sizeof want, "S%d-C0|S%d-C1|S%d-C2", i, i, i);
    int ok = i >= 0 && i % 10 != 9 && strcmp(st->replies[i], want) == 0;
    char why[256];
    if (!ok) snprintf(why, sizeof why, "session %d closed with replies \"%s\", want \"%s\"", i, i >= 0 ? st->replies[i] : "?", want);
    pthread_mutex_unlock(&mu);
    if (!ok) e_bad(st, why);
    bump(&st->closed);
}

static void e_error(void *ud, sluice_engine *e, uint64_t worker, uint64_t session, int has_category, int64_t category, int64_t code,
                    const uint8_t *msg, size_t len) {
    engine_state *st = ud;
    (void)e;
    (void)worker;
    pthread_mutex_lock(&mu);
    int i = session_index(st, session);
    int ok = i >= 0 && i % 10 == 9 && st->replies[i][0] == 0 && code == 42 && len == 7 && memcmp(msg, "refused", 7) == 0 &&
             (st->dialect == SLUICE_DIALECT_V1 ? has_category == 1 && category == 42 : has_category == 0 && category == 0);
    pthread_mutex_unlock(&mu);
    if (!ok) e_bad(st, "unexpected error");
    bump(&st->failed);
}

static void e_terminate(void *ud, sluice_engine *e, uint64_t worker, int64_t code, const uint8_t *reason, size_t len) {
    engine_state *st = ud;
    (void)e;
    (void)worker;
    pthread_mutex_lock(&mu);
    st->term_code = code;
    snprintf(st->term_reason, sizeof st->term_reason, "%.*s", (int)len, (const char *)reason);
    pthread_mutex_unlock(&mu);
    bump(&st->terminates);
}

static void e_gone(void *ud, sluice_engine *e, uint64_t worker, int err) {
    engine_state *st = ud;
    (void)e;
    pthread_mutex_lock(&mu);
    st->gone_err = err;
    st->gone_worker = worker;
    pthread_mutex_unlock(&mu);
    bump(&st->gone);
}

static void e_release(void *ud) { bump(&((engine_state *)ud)->released); }

static sluice_engine_callbacks engine_callbacks(void) {
    sluice_engine_callbacks c;
    memset(&c, 0, sizeof c);
    c.size = sizeof c;
    c.on_handshake = e_handshake;
    c.on_rejected = e_rejected;
    c.on_heartbeat = e_heartbeat;
    c.on_chunk = e_chunk;
    c.on_close = e_close;
    c.on_error = e_error;
    c.on_terminate = e_terminate;
    c.on_gone = e_gone;
    c.on_release = e_release;
    return c;
}

/* ------------------------------------------------------------------------ */
/* The worker side: echoes chunks upper-cased; sessions invoked as "fail"   */
/* get an error when the engine closes; "early" ones are closed at once.    */

#define MAXSID 4096

typedef struct {
    int connected, invokes, chunks, closes, heartbeats, terminates, disown, disconnected, released, ended_refusals, bad;
    int disc_err;
    uint64_t disc_sessions[8];
    size_t disc_n;
    int64_t term_code;
    char kind[MAXSID]; /* 'e'cho, 'f'ail, 'x' early */
    uint64_t last_invoked;
    char why[256];
} worker_state;

static void w_bad(worker_state *st, const char *why) {
    pthread_mutex_lock(&mu);
    if (!st->bad) snprintf(st->why, sizeof st->why, "%s", why);
    st->bad++;
    pthread_mutex_unlock(&mu);
}

static void w_connect(void *ud, sluice_worker *w) {
    (void)w;
    bump(&((worker_state *)ud)->connected);
}

static void w_invoke(void *ud, sluice_worker *w, uint64_t session, const uint8_t *event, size_t len) {
    worker_state *st = ud;
    char k = len == 4 && memcmp(event, "fail", 4) == 0 ? 'f' : len == 5 && memcmp(event, "early", 5) == 0 ? 'x' : 'e';
    if (session >= MAXSID) {
        w_bad(st, "session id too large for the test");
        return;
    }
    pthread_mutex_lock(&mu);
    st->kind[session] = k;
    st->last_invoked = session;
    pthread_mutex_unlock(&mu);
    if (k == 'x') {
        /* Ends its side at once; the engine's chunks still arrive. */
        int rc = sluice_worker_stream_close(w, session);
        if (rc != SLUICE_OK) w_bad(st, "early close refused");
        if (sluice_worker_stream_close(w, session) != SLUICE_E_ENDED) w_bad(st, "second close not SLUICE_E_ENDED");
    }
    bump(&st->invokes);
}

static void w_chunk(void *ud, sluice_worker *w, uint64_t session, const uint8_t *data, size_t len, const sluice_payload *p) {
    worker_state *st = ud;
    (void)p;
    pthread_mutex_lock(&mu);
    char k = session < MAXSID ? st->kind[session] : 0;
    pthread_mutex_unlock(&mu);
    if (k == 'e') {
        char up[64];
        size_t n = len < sizeof up ? len : sizeof up;
        for (size_t i = 0; i < n; i++) up[i] = (char)(data[i] >= 'a' && data[i] <= 'z' ? data[i] - 32 : data[i]);
        if (sluice_worker_stream_write(w, session, (const uint8_t *)up, n) != SLUICE_OK) w_bad(st, "echo refused");
    } else if (k == 'x') {
        if (sluice_worker_stream_write(w, session, data, len) == SLUICE_E_ENDED) bump(&st->ended_refusals);
        else w_bad(st, "write after close not SLUICE_E_ENDED");
    }
    bump(&st->chunks);
}

static void w_close(void *ud, sluice_worker *w, uint64_t session) {
    worker_state *st = ud;
    pthread_mutex_lock(&mu);
    char k = session < MAXSID ? st->kind[session] : 0;
    pthread_mutex_unlock(&mu);
    int rc = SLUICE_OK;
    if (k == 'f') rc = sluice_worker_stream_error(w, session, 42, 42, B("refused"));
    else if (k == 'e') rc = sluice_worker_stream_close(w, session);
    if (rc != SLUICE_OK) w_bad(st, "reply refused");
    /* Both directions are done now: the session is forgotten. */
    if (sluice_worker_stream_write(w, session, B("late")) != SLUICE_E_NO_SESSION) w_bad(st, "late write not SLUICE_E_NO_SESSION");
    bump(&st->closes);
}

static void w_heartbeat(void *ud, sluice_worker *w) {
    (void)w;
    bump(&((worker_state *)ud)->heartbeats);
}

static void w_terminate(void *ud, sluice_worker *w, int64_t code, const uint8_t *reason, size_t len) {
    worker_state *st = ud;
    (void)reason;
    (void)len;
    pthread_mutex_lock(&mu);
    st->term_code = code;
    pthread_mutex_unlock(&mu);
    bump(&st->terminates);
    if (sluice_worker_terminate(w, code, B("worker shut down")) != SLUICE_OK) w_bad(st, "terminate refused");
}

static void w_disown(void *ud, sluice_worker *w) {
    (void)w;
    bump(&((worker_state *)ud)->disown);
}

static void w_disconnected(void *ud, sluice_worker *w, int err, const uint64_t *sessions, size_t n) {
    worker_state *st = ud;
    (void)w;
    pthread_mutex_lock(&mu);
    st->disc_err = err;
    st->disc_n = n;
    for (size_t i = 0; i < n && i < 8; i++) st->disc_sessions[i] = sessions[i];
    pthread_mutex_unlock(&mu);
    bump(&st->disconnected);
}

static void w_release(void *ud) { bump(&((worker_state *)ud)->released); }

static sluice_worker_callbacks worker_callbacks(void) {
    sluice_worker_callbacks c;
    memset(&c, 0, sizeof c);
    c.size = sizeof c;
    c.on_connect = w_connect;
    c.on_invoke = w_invoke;
    c.on_chunk = w_chunk;
    c.on_close = w_close;
    c.on_heartbeat = w_heartbeat;
    c.on_terminate = w_terminate;
    c.on_disown = w_disown;
    c.on_disconnected = w_disconnected;
    c.on_release = w_release;
    return c;
}

static sluice_worker *start_worker(worker_state *st, const char *uuid, const char *ep, int dialect, const sluice_options *ch, int hb_ms,
                                   int disown_ms) {
    memset(st, 0, sizeof *st);
    sluice_worker_options *o = NULL;
    CHECK_OK(sluice_worker_options_new(uuid, ep, dialect, &o));
    CHECK_OK(sluice_worker_options_set_channel(o, ch));
    if (hb_ms) CHECK_OK(sluice_worker_options_set_heartbeat_interval_ms(o, (uint64_t)hb_ms));
    if (disown_ms) CHECK_OK(sluice_worker_options_set_disown_timeout_ms(o, (uint64_t)disown_ms));
    sluice_worker_callbacks cbs = worker_callbacks();
    sluice_worker *w = NULL;
    CHECK_OK(sluice_worker_connect(o, &cbs, st, &w));
    sluice_worker_options_free(o);
    return w;
}

static void free_polled(void) {
    for (int i = 0; i < 4; i++) polled_workers[i] = NULL;
    polled_engine = NULL;
}

static void worker_and_engine(int dialect, int delivery) {
    char path[200], ep[220];
    tmp_sock_path(path, sizeof path, dialect == SLUICE_DIALECT_V1 ? "roles-v1" : "roles-v0");
    snprintf(ep, sizeof ep, "unix:%s", path);
    sluice_options *ch = sluice_options_new();
    CHECK_OK(sluice_options_set_delivery(ch, delivery));
    int polled = delivery == SLUICE_DELIVERY_POLL;

    static engine_state es;
    memset(&es, 0, sizeof es);
    es.dialect = dialect;
    sluice_engine_options *eo = NULL;
    CHECK_OK(sluice_engine_options_new(ep, dialect, &eo));
    CHECK_OK(sluice_engine_options_add_uuid(eo, "6d0b4c1e"));
    CHECK_OK(sluice_engine_options_add_uuid(eo, "second"));
    CHECK_OK(sluice_engine_options_set_channel(eo, ch));
    sluice_engine_callbacks ecb = engine_callbacks();
    sluice_engine *e = NULL;
    CHECK_OK(sluice_engine_bind(eo, &ecb, &es, &e));
    sluice_engine_options_free(eo);
    char where[256];
    CHECK_OK(sluice_engine_endpoint(e, where, sizeof where, NULL));
    CHECK(strcmp(where, ep) == 0);
    CHECK((sluice_engine_fd(e) >= 0) == polled);
    if (polled) polled_engine = e;
    else CHECK_RC(sluice_engine_dispatch(e, SIZE_MAX, NULL), SLUICE_E_NOT_POLLED);

    static worker_state ws;
    sluice_worker *w = start_worker(&ws, "6d0b4c1e", ep, dialect, ch, 50, 0);
    CHECK((sluice_worker_fd(w) >= 0) == polled);
    if (polled) polled_workers[0] = w;
    WAIT_FOR(ws.connected, 1);
    WAIT_FOR(es.handshakes, 1);
    CHECK(strcmp(es.uuid, "6d0b4c1e") == 0);
    uint64_t wid = es.worker;

    int ended = 0;
    /* 250 sessions, three chunks each: every tenth fails, every tenth is
       ended early by the worker, the rest are echoed upper-cased. */
    for (int i = 0; i < NS; i++) {
        const char *event = i % 10 == 9 ? "fail" : i % 10 == 5 ? "early" : "echo";
        uint64_t s = 0;
        CHECK_OK(sluice_engine_worker_invoke(e, wid, (const uint8_t *)event, strlen(event), &s));
        pthread_mutex_lock(&mu);
        es.sessions[i] = s;
        pthread_mutex_unlock(&mu);
        for (int k = 0; k < 3; k++) {
            char c[32];
            int n = snprintf(c, sizeof c, "s%d-c%d", i, k);
            CHECK_OK(sluice_engine_stream_write(e, wid, s, (const uint8_t *)c, (size_t)n));
        }
        CHECK_OK(sluice_engine_stream_close(e, wid, s));
        /* This side has ended it (or, if the worker already answered,
           the session is finished in both directions). */
        int rc = sluice_engine_stream_write(e, wid, s, B("more"));
        if (rc == SLUICE_E_ENDED) ended++;
        else CHECK_RC(rc, SLUICE_E_NO_SESSION);
    }
    CHECK(ended > 0);
    WAIT_FOR(ws.closes, NS);
    WAIT_FOR(es.failed, NS / 10);
    WAIT_FOR(es.closed, NS - NS / 10);
    if (es.bad) FAILF("engine: %d problems, first: %s", es.bad, es.why);
    if (ws.bad) FAILF("worker: %d problems, first: %s", ws.bad, ws.why);
    CHECK(ws.invokes == NS && ws.chunks == 3 * NS && ws.ended_refusals == 3 * (NS / 10));
    size_t open = 99;
    CHECK_OK(sluice_engine_worker_open_sessions(e, wid, &open));
    CHECK(open == 0);
    CHECK_OK(sluice_worker_open_sessions(w, &open));
    CHECK(open == 0);
    CHECK_RC(sluice_engine_stream_write(e, wid, 99999, B("x")), SLUICE_E_NO_SESSION);
    CHECK_RC(sluice_engine_worker_invoke(e, 424242, B("x"), NULL), SLUICE_E_NO_SESSION);
    /* Heartbeats went both ways and were answered. */
    WAIT_FOR(es.heartbeats, 1);
    WAIT_FOR(ws.heartbeats, 1);

    /* Terminate from the engine: the worker answers with its own. */
    CHECK_OK(sluice_engine_worker_terminate(e, wid, 7, B("slave is idle")));
    WAIT_FOR(es.gone, 1);
    CHECK(ws.terminates == 1 && ws.term_code == 7);
    CHECK(es.terminates == 1 && es.term_code == 7 && strcmp(es.term_reason, "worker shut down") == 0);
    CHECK(es.gone_err == SLUICE_ESHUTDOWN && es.gone_worker == wid);
    CHECK_RC(sluice_engine_worker_invoke(e, wid, B("echo"), NULL), SLUICE_E_NO_SESSION);
    /* The worker terminated itself: no callback after it, then release. */
    WAIT_FOR(ws.released, 1);
    CHECK(ws.disconnected == 0);
    CHECK_RC(sluice_worker_stream_write(w, 2, B("x")), SLUICE_E_NO_SESSION);
    polled_workers[0] = NULL;
    sluice_worker_free(w);

    /* Terminate from the worker (abnormal). */
    static worker_state w2s;
    sluice_worker *w2 = start_worker(&w2s, "second", ep, dialect, ch, 0, 0);
    if (polled) polled_workers[1] = w2;
    WAIT_FOR(w2s.connected, 1);
    WAIT_FOR(es.handshakes, 2);
    CHECK(strcmp(es.uuid, "second") == 0 && es.worker != wid);
    CHECK_OK(sluice_worker_terminate(w2, 2, B("self-terminating")));
    WAIT_FOR(es.gone, 2);
    CHECK(es.terminates == 2 && es.term_code == 2 && strcmp(es.term_reason, "self-terminating") == 0);
    CHECK(es.gone_err == SLUICE_ESHUTDOWN);
    polled_workers[1] = NULL;
    sluice_worker_free(w2);
    WAIT_FOR(w2s.released, 1);
    CHECK(w2s.disconnected == 0);

    /* A uuid the engine did not spawn is refused: the engine drops the
       connection (the worker sees end of stream, a reset, or EPIPE from a
       heartbeat written just then). */
    static worker_state w3s;
    sluice_worker *w3 = start_worker(&w3s, "stranger", ep, dialect, ch, 0, 0);
    if (polled) polled_workers[2] = w3;
    WAIT_FOR(es.rejected, 1);
    CHECK(strcmp(es.rejected_uuid, "stranger") == 0);
    WAIT_FOR(w3s.disconnected, 1);
    if (w3s.disc_err != SLUICE_ECONNRESET && w3s.disc_err != SLUICE_ESHUTDOWN && w3s.disc_err != SLUICE_EPIPE) FAILF("rejected worker: errno %d", w3s.disc_err);
    CHECK(w3s.disc_n == 0);
    polled_workers[2] = NULL;
    sluice_worker_free(w3);
    WAIT_FOR(w3s.released, 1);

    free_polled();
    sluice_engine_free(e);
    WAIT_FOR(es.released, 1);
    sleep_ms(20);
    CHECK(es.released == 1 && ws.released == 1 && w2s.released == 1 && w3s.released == 1);
    sluice_options_free(ch);
}

static void test_worker_and_engine_v1_inline(void) { worker_and_engine(SLUICE_DIALECT_V1, SLUICE_DELIVERY_INLINE); }
static void test_worker_and_engine_v0_poll(void) { worker_and_engine(SLUICE_DIALECT_V0, SLUICE_DELIVERY_POLL); }

/* An engine that accepts, opens one session, then never answers: a raw
   sluice server channel (no role) that only records frames. The worker
   heartbeats, disowns itself, and reports the open session. */
static void disown(int dialect) {
    char path[200], ep[220];
    tmp_sock_path(path, sizeof path, dialect == SLUICE_DIALECT_V1 ? "disown-v1" : "disown-v0");
    snprintf(ep, sizeof ep, "unix:%s", path);
    rec raw;
    rec_init(&raw);
    acceptor a;
    acceptor_init(&a, &raw, 1);
    sluice_options *o = opts_make(dialect, SLUICE_ROLE_NONE);
    sluice_server *srv = NULL;
    CHECK_OK(sluice_server_bind(ep, o, &ACCEPT_CALLBACKS, &a, &srv));
    sluice_options_free(o);

    static worker_state ws;
    sluice_worker *w = start_worker(&ws, "u", ep, dialect, NULL, 30, under_valgrind() ? 1500 : 300);
    WAIT_FOR(ws.connected, 1);
    sluice_channel *engine_side = acceptor_wait(&a, 0);
    /* invoke("ping"): v1 [2, 0, ["ping"]], v0 [3, 1, ["ping"]]. */
    uint8_t args[] = {0x91, 0xa4, 'p', 'i', 'n', 'g'};
    if (dialect == SLUICE_DIALECT_V1) CHECK_OK(sluice_channel_send_frame(engine_side, 2, 0, args, sizeof args));
    else CHECK_OK(sluice_channel_send_frame(engine_side, 1, 3, args, sizeof args));
    WAIT_FOR(ws.invokes, 1);
    uint64_t s = ws.last_invoked;
    CHECK(s == (dialect == SLUICE_DIALECT_V1 ? 2u : 1u));
    WAIT_FOR(ws.disown, 1);
    WAIT_FOR(ws.disconnected, 1);
    CHECK(ws.disc_err == SLUICE_ETIMEDOUT);
    CHECK(ws.disc_n == 1 && ws.disc_sessions[0] == s);
    CHECK_RC(sluice_worker_stream_write(w, s, B("x")), SLUICE_E_NO_SESSION);
    /* The engine side saw the handshake first, then heartbeats. */
    rec_wait_lines(&raw, 1 + 4);
    pthread_mutex_lock(&raw.mu);
    CHECK(strcmp(raw.lines[0], "connect") == 0);
    const char *hs = dialect == SLUICE_DIALECT_V1 ? "frame 1 0 91a175" : "frame 0 0 91a175";
    if (strcmp(raw.lines[1], hs) != 0) FAILF("first frame %s, want %s", raw.lines[1], hs);
    const char *hb = dialect == SLUICE_DIALECT_V1 ? "frame 1 0 90" : "frame 0 1 90";
    int beats = 0;
    for (int i = 2; i < raw.n; i++)
        if (strcmp(raw.lines[i], hb) == 0) beats++;
    pthread_mutex_unlock(&raw.mu);
    if (beats < 3) {
        rec_dump(&raw);
        FAILF("%d heartbeats", beats);
    }
    sluice_worker_free(w);
    WAIT_FOR(ws.released, 1);
    sluice_channel_free(engine_side);
    sluice_server_free(srv);
    rec_wait_released(&raw);
    acceptor_wait_released(&a);
    rec_destroy(&raw);
    acceptor_destroy(&a);
}

static void test_disown_v1(void) { disown(SLUICE_DIALECT_V1); }
static void test_disown_v0(void) { disown(SLUICE_DIALECT_V0); }

/* A connection that never handshakes is cut by the engine (ETIMEDOUT). */
static void test_engine_cuts_a_silent_worker(void) {
    char path[200], ep[220];
    tmp_sock_path(path, sizeof path, "silent-worker");
    snprintf(ep, sizeof ep, "unix:%s", path);
    static engine_state es;
    memset(&es, 0, sizeof es);
    sluice_engine_options *eo = NULL;
    CHECK_OK(sluice_engine_options_new(ep, SLUICE_DIALECT_V1, &eo));
    CHECK_OK(sluice_engine_options_set_handshake_timeout_ms(eo, 200));
    CHECK_RC(sluice_engine_options_set_heartbeat_timeout_ms(eo, 0), SLUICE_E_INVALID);
    sluice_engine_callbacks ecb = engine_callbacks();
    sluice_engine *e = NULL;
    CHECK_OK(sluice_engine_bind(eo, &ecb, &es, &e));
    sluice_engine_options_free(eo);
    int fd = unix_connect(path);
    WAIT_FOR(es.gone, 1);
    CHECK(es.gone_err == SLUICE_ETIMEDOUT && es.handshakes == 0);
    uint8_t b[16];
    CHECK(wait_readable(fd, timeout_ms()));
    CHECK(recv(fd, b, sizeof b, 0) <= 0);
    close(fd);
    sluice_engine_free(e);
    WAIT_FOR(es.released, 1);
}

/* The runtime's argv, as main receives it. */
static void test_worker_options_from_args(void) {
    char *argv[] = {"worker", "--app", "echo", "--locator", "127.0.0.1:10053,[::1]:10053", "--uuid", "6d0b4c1e",
                    "--endpoint", "/run/cocaine/echo.1", "--protocol", "1", NULL};
    sluice_worker_options *o = NULL;
    CHECK_OK(sluice_worker_options_from_args(11, argv, &o));
    int d = -1;
    CHECK_OK(sluice_worker_options_get_dialect(o, &d));
    CHECK(d == SLUICE_DIALECT_V1);
    char buf[64];
    size_t len = 0;
    CHECK_OK(sluice_worker_options_get(o, SLUICE_WORKER_APP, buf, sizeof buf, &len));
    CHECK(strcmp(buf, "echo") == 0 && len == 4);
    CHECK_OK(sluice_worker_options_get(o, SLUICE_WORKER_UUID, buf, sizeof buf, NULL));
    CHECK(strcmp(buf, "6d0b4c1e") == 0);
    CHECK_OK(sluice_worker_options_get(o, SLUICE_WORKER_ENDPOINT, buf, sizeof buf, NULL));
    CHECK(strcmp(buf, "unix:/run/cocaine/echo.1") == 0);
    CHECK_OK(sluice_worker_options_get(o, SLUICE_WORKER_LOCATOR, buf, sizeof buf, NULL));
    CHECK(strcmp(buf, "127.0.0.1:10053,[::1]:10053") == 0);
    CHECK_RC(sluice_worker_options_get(o, SLUICE_WORKER_LOCATOR, buf, 8, &len), SLUICE_E_BUFFER);
    CHECK(len == strlen("127.0.0.1:10053,[::1]:10053"));
    CHECK_RC(sluice_worker_options_get(o, 99, buf, sizeof buf, NULL), SLUICE_E_INVALID);
    sluice_worker_options_free(o);

    /* No --protocol: v0. */
    char *v0[] = {"w", "--uuid", "u", "--endpoint", "/e", "--unknown", "x"};
    CHECK_OK(sluice_worker_options_from_args(7, v0, &o));
    CHECK_OK(sluice_worker_options_get_dialect(o, &d));
    CHECK(d == SLUICE_DIALECT_V0);
    sluice_worker_options_free(o);

    char *missing[] = {"w", "--endpoint", "/e"};
    o = (sluice_worker_options *)1;
    CHECK_RC(sluice_worker_options_from_args(3, missing, &o), SLUICE_E_INVALID);
    CHECK(o == NULL);
    CHECK(strstr(sluice_last_error(), "--uuid") != NULL);
    char *bad[] = {"w", "--uuid", "u", "--endpoint", "/e", "--protocol", "7"};
    CHECK_RC(sluice_worker_options_from_args(7, bad, &o), SLUICE_E_INVALID);
    CHECK_RC(sluice_worker_options_new("u", "not an endpoint", SLUICE_DIALECT_V1, &o), SLUICE_E_INVALID);
    CHECK_RC(sluice_worker_options_new("u", "/e", 5, &o), SLUICE_E_INVALID);
    CHECK_RC(sluice_worker_options_new(NULL, "/e", 1, &o), SLUICE_E_NULL);
    sluice_worker_options_free(NULL);
    sluice_engine_options_free(NULL);
    sluice_worker_free(NULL);
    sluice_engine_free(NULL);
}

/* Callbacks structs are read up to their declared size: 0 is refused, a
   short struct leaves the members past it unused (NULL). */
static void test_sized_callbacks(void) {
    char path[200], ep[220];
    tmp_sock_path(path, sizeof path, "sized");
    snprintf(ep, sizeof ep, "unix:%s", path);
    sluice_engine_options *eo = NULL;
    CHECK_OK(sluice_engine_options_new(ep, SLUICE_DIALECT_V1, &eo));
    static engine_state es;
    memset(&es, 0, sizeof es);
    sluice_engine_callbacks ecb = engine_callbacks();
    ecb.size = 0;
    sluice_engine *e = (sluice_engine *)1;
    CHECK_RC(sluice_engine_bind(eo, &ecb, &es, &e), SLUICE_E_INVALID);
    CHECK(e == NULL);
    /* Only up to on_rejected: on_gone and on_release are past the size. */
    ecb.size = offsetof(sluice_engine_callbacks, on_heartbeat);
    CHECK_OK(sluice_engine_bind(eo, &ecb, &es, &e));
    sluice_engine_options_free(eo);
    static worker_state ws;
    sluice_worker *w = start_worker(&ws, "sized", ep, SLUICE_DIALECT_V1, NULL, 0, 0);
    WAIT_FOR(es.handshakes, 1);
    sluice_worker_free(w);
    WAIT_FOR(ws.released, 1);
    sleep_ms(100);
    sluice_engine_free(e);
    sleep_ms(100);
    CHECK(es.gone == 0 && es.released == 0);
}

int main(void) {
    RUN(test_worker_options_from_args);
    RUN(test_sized_callbacks);
    RUN(test_worker_and_engine_v1_inline);
    RUN(test_worker_and_engine_v0_poll);
    RUN(test_disown_v1);
    RUN(test_disown_v0);
    RUN(test_engine_cuts_a_silent_worker);
    return 0;
}
