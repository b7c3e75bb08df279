/*
 * Sessions from C: a session reconnecting each time its server is killed
 * and restarted (events in order, backoff delays within bounds, sends
 * refused while down, data through every new connection); a resumable
 * session against a resume server, cut from either side again and again
 * while numbered chunks flow both ways, with every number delivered
 * exactly once, in order; a session in poll mode.
 */
#include "harness.h"

#define B(s) (const uint8_t *)(s), (sizeof(s) - 1)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static int get(int *field) {
    pthread_mutex_lock(&mu);
    int v = *field;
    pthread_mutex_unlock(&mu);
    return v;
}

static void bump(int *field) {
    pthread_mutex_lock(&mu);
    (*field)++;
    pthread_mutex_unlock(&mu);
}

static sluice_session *polled_session;

static void pump_once(void) {
    if (polled_session) {
        int fd = sluice_session_fd(polled_session);
        if (wait_readable(fd, 5)) CHECK_OK(sluice_session_dispatch(polled_session, SIZE_MAX, NULL));
    } else {
        sleep_ms(1);
    }
}

#define WAIT_FOR(field, want)                                                                    \
    do {                                                                                         \
        int64_t end_ = now_ms() + timeout_ms();                                                  \
        while (get(&(field)) < (want)) {                                                         \
            if (now_ms() > end_) FAILF("waited for %s >= %d, got %d", #field, (int)(want), get(&(field))); \
            pump_once();                                                                         \
        }                                                                                        \
    } while (0)

/* ------------------------------------------------------------------------ */
/* A session's events as counters and a log.                                */

typedef struct {
    int connected, resumed, disconnected, attempts, frames, released, bad, drains;
    int last_err;
    char endpoint[256];
    char order[4096]; /* C / D / A per event, to check the sequence */
    uint64_t next_echo; /* resume: the next echoed number expected */
    char why[256];
    pthread_t thread;
} sess_state;

static void log_event(sess_state *st, char c) {
    pthread_mutex_lock(&mu);
    size_t n = strlen(st->order);
    if (n + 1 < sizeof st->order) {
        st->order[n] = c;
        st->order[n + 1] = 0;
    }
    st->thread = pthread_self();
    pthread_mutex_unlock(&mu);
}

static void s_bad(sess_state *st, const char *why) {
    pthread_mutex_lock(&mu);
    if (!st->bad) snprintf(st->why, sizeof st->why, "%s", why);
    st->bad++;
    pthread_mutex_unlock(&mu);
}

static uint64_t backoff_initial = 5, backoff_max = 40;

static void s_connected(void *ud, sluice_session *s, const char *endpoint, int resumed) {
    sess_state *st = ud;
    (void)s;
    pthread_mutex_lock(&mu);
    snprintf(st->endpoint, sizeof st->endpoint, "%s", endpoint);
    if (resumed) st->resumed++;
    pthread_mutex_unlock(&mu);
    log_event(st, 'C');
    bump(&st->connected);
}

static void s_disconnected(void *ud, sluice_session *s, int err) {
    sess_state *st = ud;
    (void)s;
    pthread_mutex_lock(&mu);
    st->last_err = err;
    pthread_mutex_unlock(&mu);
    log_event(st, 'D');
    bump(&st->disconnected);
}

static void s_attempt(void *ud, sluice_session *s, uint32_t attempt, const char *endpoint, uint64_t delay_ms) {
    sess_state *st = ud;
    (void)s;
    (void)endpoint;
    /* attempt n waits initial * 2^(n-1), capped, +-30 % (ms rounding: +-1). */
    uint64_t base = backoff_initial;
    for (uint32_t i = 1; i < attempt && base < backoff_max; i++) base *= 2;
    if (base > backoff_max) base = backoff_max;
    if ((double)delay_ms < (double)base * 0.7 - 1 || (double)delay_ms > (double)base * 1.3 + 1) {
        char why[128];
        snprintf(why, sizeof why, "attempt %u waits %llu ms, base %llu", attempt, (unsigned long long)delay_ms, (unsigned long long)base);
        s_bad(st, why);
    }
    log_event(st, 'A');
    bump(&st->attempts);
}

static void s_frame(void *ud, sluice_session *s, uint64_t session, uint64_t type_id, const uint8_t *args, size_t len) {
    sess_state *st = ud;
    (void)s;
    (void)session;
    (void)type_id;
    /* Resume echoes: [<8-byte little-endian number>] as a str8/fixstr. */
    if (len >= 9) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = (n << 8) | args[len - 8 + (size_t)i];
        pthread_mutex_lock(&mu);
        uint64_t want = st->next_echo;
        st->next_echo = n + 100;
        pthread_mutex_unlock(&mu);
        if (n != want) {
            char why[128];
            snprintf(why, sizeof why, "echo %llu, expected %llu", (unsigned long long)n, (unsigned long long)want);
            s_bad(st, why);
        }
    }
    bump(&st->frames);
}

static void s_drain(void *ud, sluice_session *s) {
    (void)s;
    bump(&((sess_state *)ud)->drains);
}

static void s_release(void *ud) { bump(&((sess_state *)ud)->released); }

static sluice_session_callbacks session_callbacks(void) {
    sluice_session_callbacks c;
    memset(&c, 0, sizeof c);
    c.size = sizeof c;
    c.on_connected = s_connected;
    c.on_disconnected = s_disconnected;
    c.on_reconnect_attempt = s_attempt;
    c.on_frame = s_frame;
    c.on_drain = s_drain;
    c.on_release = s_release;
    return c;
}

/* ------------------------------------------------------------------------ */

static void reconnects(int delivery) {
    int rounds = under_valgrind() ? 3 : 10;
    char path[200], ep[220];
    tmp_sock_path(path, sizeof path, delivery == SLUICE_DELIVERY_POLL ? "restarts-poll" : "restarts");
    snprintf(ep, sizeof ep, "unix:%s", path);

    sluice_options *raw = opts_make(SLUICE_DIALECT_V1, SLUICE_ROLE_NONE);
    static rec recs[10];
    static acceptor acc[10];
    acceptor_init(&acc[0], &recs[0], 1);
    rec_init(&recs[0]);
    sluice_server *srv = NULL;
    CHECK_OK(sluice_server_bind(ep, raw, &ACCEPT_CALLBACKS, &acc[0], &srv));

    static sess_state st;
    memset(&st, 0, sizeof st);
    sluice_session_options *o = sluice_session_options_new();
    CHECK(o != NULL);
    sluice_session_callbacks cbs = session_callbacks();
    sluice_session *s = (sluice_session *)1;
    CHECK_RC(sluice_session_connect(o, &cbs, &st, &s), SLUICE_E_INVALID); /* no endpoint */
    CHECK(s == NULL);
    CHECK_OK(sluice_session_options_add_endpoint(o, ep));
    CHECK_RC(sluice_session_options_add_endpoint(o, "no such thing"), SLUICE_E_INVALID);
    CHECK_OK(sluice_session_options_set_backoff(o, backoff_initial, backoff_max, 2.0, 0.3));
    CHECK_RC(sluice_session_options_set_backoff(o, 10, 5, 2.0, 0.3), SLUICE_E_INVALID);
    CHECK_RC(sluice_session_options_set_backoff(o, 5, 10, 0.5, 0.3), SLUICE_E_INVALID);
    CHECK_RC(sluice_session_options_set_liveness(o, 10, 0), SLUICE_E_INVALID);
    sluice_options *ch = sluice_options_new();
    CHECK_OK(sluice_options_set_delivery(ch, delivery));
    CHECK_OK(sluice_session_options_set_channel(o, ch));
    sluice_options_free(ch);
    CHECK_OK(sluice_session_connect(o, &cbs, &st, &s));
    sluice_session_options_free(o);
    if (delivery == SLUICE_DELIVERY_POLL) {
        CHECK(sluice_session_fd(s) >= 0);
        polled_session = s;
    } else {
        CHECK(sluice_session_fd(s) == -1);
        CHECK_RC(sluice_session_dispatch(s, SIZE_MAX, NULL), SLUICE_E_NOT_POLLED);
    }
    int fd = sluice_session_fd(s);

    for (int r = 0; r < rounds; r++) {
        WAIT_FOR(st.connected, r + 1);
        CHECK(strcmp(st.endpoint, ep) == 0);
        int up = 0;
        CHECK_OK(sluice_session_is_connected(s, &up));
        CHECK(up == 1);
        /* Data goes through the new connection. */
        CHECK_OK(sluice_session_send_chunk(s, 5, B("hi")));
        const char *want[] = {"connect", "frame 5 0 91a26869"};
        rec_expect_from(&recs[r], 0, want, 2);
        /* Kill the server: the listener and the connection. */
        sluice_channel *conn = acceptor_wait(&acc[r], 0);
        sluice_server_free(srv);
        sluice_channel_abort(conn);
        sluice_channel_free(conn);
        WAIT_FOR(st.disconnected, r + 1);
        int err = get(&st.last_err);
        if (err != SLUICE_ESHUTDOWN && err != SLUICE_ECONNRESET) FAILF("round %d: errno %d", r, err);
        /* Down: sends are refused (no resume), attempts fail. */
        CHECK_RC(sluice_session_send_chunk(s, 5, B("lost")), SLUICE_E_CLOSED);
        int a0 = get(&st.attempts);
        WAIT_FOR(st.attempts, a0 + 2);
        rec_wait_released(&recs[r]);
        acceptor_wait_released(&acc[r]);
        if (r + 1 < rounds) {
            /* Back up: the attempt already scheduled reaches it. */
            rec_init(&recs[r + 1]);
            acceptor_init(&acc[r + 1], &recs[r + 1], 1);
            CHECK_OK(sluice_server_bind(ep, raw, &ACCEPT_CALLBACKS, &acc[r + 1], &srv));
        }
    }
    if (st.bad) FAILF("%d problems, first: %s", st.bad, st.why);
    /* The order: C D A A... C D A A... */
    pthread_mutex_lock(&mu);
    const char *o_ = st.order;
    CHECK(o_[0] == 'C');
    int cs = 0;
    for (const char *p = o_; *p; p++) {
        if (*p == 'C') {
            cs++;
            CHECK(p[1] == 0 || p[1] == 'D');
        }
        if (*p == 'D') CHECK(p[1] == 0 || p[1] == 'A');
    }
    CHECK(cs == rounds);
    if (delivery == SLUICE_DELIVERY_POLL) CHECK(pthread_equal(st.thread, pthread_self()));
    else CHECK(!pthread_equal(st.thread, pthread_self()));
    pthread_mutex_unlock(&mu);
    /* Poll mode: the same descriptor across every reconnection. */
    CHECK(sluice_session_fd(s) == fd);
    CHECK_OK(sluice_session_stop(s));
    CHECK_RC(sluice_session_send_chunk(s, 5, B("x")), SLUICE_E_CLOSED);
    polled_session = NULL;
    sluice_session_free(s);
    WAIT_FOR(st.released, 1);
    sleep_ms(20);
    CHECK(st.released == 1);
    for (int r = 0; r < rounds; r++) {
        rec_destroy(&recs[r]);
        acceptor_destroy(&acc[r]);
    }
    sluice_options_free(raw);
}

static void test_reconnects_after_server_restarts(void) { reconnects(SLUICE_DELIVERY_INLINE); }
static void test_reconnects_in_poll_mode(void) { reconnects(SLUICE_DELIVERY_POLL); }

/* ------------------------------------------------------------------------ */
/* Resume.                                                                   */

typedef struct {
    int connected, new_peers, resumed, disconnected, released, bad;
    uint64_t peer;
    uint64_t next; /* the next number expected from the client */
    int got;       /* numbers received */
    char why[256];
} server_state;

static void r_bad(server_state *st, const char *why) {
    pthread_mutex_lock(&mu);
    if (!st->bad) snprintf(st->why, sizeof st->why, "%s", why);
    st->bad++;
    pthread_mutex_unlock(&mu);
}

static void r_connected(void *ud, sluice_resume_server *srv, uint64_t peer, int resumed) {
    server_state *st = ud;
    (void)srv;
    pthread_mutex_lock(&mu);
    if (st->peer != 0 && st->peer != peer) {
        pthread_mutex_unlock(&mu);
        r_bad(st, "a second peer");
        return;
    }
    st->peer = peer;
    if (resumed) st->resumed++;
    else st->new_peers++;
    st->connected++;
    pthread_mutex_unlock(&mu);
}

static void r_disconnected(void *ud, sluice_resume_server *srv, uint64_t peer, int err) {
    (void)srv;
    (void)peer;
    (void)err;
    bump(&((server_state *)ud)->disconnected);
}

static void r_frame(void *ud, sluice_resume_server *srv, uint64_t peer, uint64_t session, uint64_t type_id, const uint8_t *args, size_t len) {
    server_state *st = ud;
    (void)type_id;
    if (len < 9) {
        r_bad(st, "short frame");
        return;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | args[len - 8 + (size_t)i];
    pthread_mutex_lock(&mu);
    uint64_t want = st->next;
    st->next = n + 1;
    st->got++;
    pthread_mutex_unlock(&mu);
    if (n != want) {
        char why[128];
        snprintf(why, sizeof why, "server got %llu, expected %llu", (unsigned long long)n, (unsigned long long)want);
        r_bad(st, why);
    }
    if (n % 100 == 0) {
        /* Echo the number back: kept until the client acknowledges it. */
        int rc = sluice_peer_send_chunk(srv, peer, session, args + len - 8, 8);
        if (rc != SLUICE_OK) r_bad(st, "echo refused");
    }
}

static void r_release(void *ud) { bump(&((server_state *)ud)->released); }

static void test_resume_across_cuts(void) {
    const int N = under_valgrind() ? 3000 : 100000;
    const int CUTS = under_valgrind() ? 6 : 50;
    char path[200], ep[220];
    tmp_sock_path(path, sizeof path, "resume");
    snprintf(ep, sizeof ep, "unix:%s", path);

    static server_state ss;
    memset(&ss, 0, sizeof ss);
    sluice_resume_server_options *ro = NULL;
    CHECK_OK(sluice_resume_server_options_new(ep, &ro));
    CHECK_OK(sluice_resume_server_options_set_resume(ro, 256 << 10, 64, 32 << 10));
    CHECK_RC(sluice_resume_server_options_set_peer_timeout_ms(ro, 0), SLUICE_E_INVALID);
    sluice_resume_server_callbacks rcb;
    memset(&rcb, 0, sizeof rcb);
    rcb.size = sizeof rcb;
    rcb.on_peer_connected = r_connected;
    rcb.on_peer_disconnected = r_disconnected;
    rcb.on_frame = r_frame;
    rcb.on_release = r_release;
    sluice_resume_server *srv = NULL;
    CHECK_OK(sluice_resume_server_bind(ro, &rcb, &ss, &srv));
    sluice_resume_server_options_free(ro);
    char where[256];
    CHECK_OK(sluice_resume_server_endpoint(srv, where, sizeof where, NULL));
    CHECK(strcmp(where, ep) == 0);

    static sess_state st;
    memset(&st, 0, sizeof st);
    sluice_session_options *o = sluice_session_options_new();
    CHECK_OK(sluice_session_options_add_endpoint(o, ep));
    backoff_initial = 1;
    backoff_max = 10;
    CHECK_OK(sluice_session_options_set_backoff(o, backoff_initial, backoff_max, 2.0, 0.2));
    CHECK_OK(sluice_session_options_set_resume(o, 1, 256 << 10, 64, 32 << 10));
    sluice_session_callbacks cbs = session_callbacks();
    sluice_session *s = NULL;
    CHECK_OK(sluice_session_connect(o, &cbs, &st, &s));
    sluice_session_options_free(o);
    WAIT_FOR(st.connected, 1);
    CHECK(st.resumed == 0);

    int cut = 0, would_block = 0;
    for (int n = 0; n < N; n++) {
        if (cut < CUTS && n == (cut + 1) * (N / (CUTS + 1))) {
            /* Each cut severs a live connection, from either side. */
            int64_t end = now_ms() + timeout_ms();
            for (;;) {
                int up = 0, peer_up = 0;
                CHECK_OK(sluice_session_is_connected(s, &up));
                pthread_mutex_lock(&mu);
                uint64_t peer = ss.peer; /* set at the first connection */
                pthread_mutex_unlock(&mu);
                if (peer) CHECK_OK(sluice_peer_is_connected(srv, peer, &peer_up));
                if (up && peer_up) break;
                if (now_ms() > end) FAILF("not reconnected before cut %d", cut);
                sleep_ms(1);
            }
            int before = get(&st.connected);
            if (cut % 2 == 0) CHECK_OK(sluice_session_disconnect(s, SLUICE_ECONNRESET));
            else CHECK_OK(sluice_peer_disconnect(srv, ss.peer, SLUICE_ECONNRESET));
            cut++;
            WAIT_FOR(st.connected, before + 1);
        }
        uint8_t b[8];
        for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)n >> (8 * i));
        int64_t end = now_ms() + timeout_ms();
        for (;;) {
            int rc = sluice_session_send_chunk(s, 1, b, sizeof b);
            if (rc == SLUICE_OK) break;
            CHECK_RC(rc, SLUICE_E_WOULD_BLOCK);
            would_block++;
            if (now_ms() > end) FAILF("stuck at %d", n);
            usleep(200);
        }
    }
    WAIT_FOR(ss.got, N);
    WAIT_FOR(st.frames, N / 100);
    sleep_ms(50);
    if (ss.bad) FAILF("server: %d problems, first: %s", ss.bad, ss.why);
    if (st.bad) FAILF("session: %d problems, first: %s", st.bad, st.why);
    CHECK(get(&ss.got) == N && get(&st.frames) == N / 100);
    /* Every reconnection resumed the same peer. */
    CHECK(st.resumed >= CUTS && st.connected == st.resumed + 1);
    CHECK(ss.new_peers == 1 && ss.resumed >= CUTS);
    uint64_t received = 0;
    CHECK_OK(sluice_peer_received(srv, ss.peer, &received));
    CHECK(received == (uint64_t)N);
    CHECK_OK(sluice_session_received(s, &received));
    CHECK(received == (uint64_t)(N / 100));
    CHECK_RC(sluice_peer_send_chunk(srv, 987654, 1, B("x")), SLUICE_E_NO_SESSION);
    /* The other sends of a peer reach the session's on_frame too. */
    uint8_t one[] = {0x91, 0x01};
    CHECK_OK(sluice_peer_send_frame(srv, ss.peer, 1, 9, one, sizeof one));
    CHECK_RC(sluice_peer_send_frame(srv, ss.peer, 1, 9, one, 1), SLUICE_E_INVALID);
    sluice_payload *pl = sluice_payload_new(B("kept"));
    CHECK_OK(sluice_peer_send_chunk_payload(srv, ss.peer, 1, pl));
    sluice_payload_free(pl);
    CHECK_OK(sluice_peer_send_choke(srv, ss.peer, 1));
    WAIT_FOR(st.frames, N / 100 + 3);
    printf("# resume: %d chunks, %d cuts, %d sends refused (would block)\n", N, CUTS, would_block);

    sluice_session_free(s);
    WAIT_FOR(st.released, 1);
    sluice_resume_server_free(srv);
    WAIT_FOR(ss.released, 1);
    backoff_initial = 5;
    backoff_max = 40;
}

/* ------------------------------------------------------------------------ */
/* A session with a role: typed messages reach their callbacks, the rest    */
/* on_frame; its sends are the frames a raw peer reads.                     */

static rec *typed_log;

static void t_invoke(void *ud, sluice_session *s, uint64_t session, const uint8_t *event, size_t len) {
    (void)ud;
    (void)s;
    rec_add(typed_log, "invoke %llu %.*s", (unsigned long long)session, (int)len, (const char *)event);
}
static void t_chunk(void *ud, sluice_session *s, uint64_t session, const uint8_t *data, size_t len, const sluice_payload *p) {
    (void)ud;
    (void)s;
    CHECK(sluice_payload_data(p) == data && sluice_payload_len(p) == len);
    rec_add(typed_log, "chunk %llu %.*s", (unsigned long long)session, (int)len, (const char *)data);
}
static void t_choke(void *ud, sluice_session *s, uint64_t session) {
    (void)ud;
    (void)s;
    rec_add(typed_log, "choke %llu", (unsigned long long)session);
}
static void t_heartbeat(void *ud, sluice_session *s) {
    (void)ud;
    (void)s;
    rec_add(typed_log, "heartbeat");
}
static void t_terminate(void *ud, sluice_session *s, int64_t code, const uint8_t *reason, size_t len) {
    (void)ud;
    (void)s;
    rec_add(typed_log, "terminate %lld %.*s", (long long)code, (int)len, (const char *)reason);
}
static void t_frame(void *ud, sluice_session *s, uint64_t session, uint64_t type_id, const uint8_t *args, size_t len) {
    char hex[64];
    (void)ud;
    (void)s;
    hex_encode(args, len < 20 ? len : 20, hex);
    rec_add(typed_log, "frame %llu %llu %s", (unsigned long long)session, (unsigned long long)type_id, hex);
}

static void test_typed_messages_and_sends(void) {
    char path[200], ep[220];
    tmp_sock_path(path, sizeof path, "typed");
    snprintf(ep, sizeof ep, "unix:%s", path);
    rec raw, log;
    rec_init(&raw);
    rec_init(&log);
    typed_log = &log;
    acceptor a;
    acceptor_init(&a, &raw, 1);
    sluice_options *o = opts_make(SLUICE_DIALECT_V1, SLUICE_ROLE_NONE);
    sluice_server *srv = NULL;
    CHECK_OK(sluice_server_bind(ep, o, &ACCEPT_CALLBACKS, &a, &srv));
    sluice_options_free(o);

    static sess_state st;
    memset(&st, 0, sizeof st);
    sluice_session_options *so = sluice_session_options_new();
    CHECK_OK(sluice_session_options_add_endpoint(so, ep));
    sluice_options *worker_role = opts_make(SLUICE_DIALECT_V1, SLUICE_ROLE_WORKER);
    CHECK_OK(sluice_session_options_set_channel(so, worker_role));
    sluice_options_free(worker_role);
    sluice_session_callbacks cbs = session_callbacks();
    cbs.on_invoke = t_invoke;
    cbs.on_chunk = t_chunk;
    cbs.on_choke = t_choke;
    cbs.on_heartbeat = t_heartbeat;
    cbs.on_terminate = t_terminate;
    cbs.on_frame = t_frame;
    sluice_session *s = NULL;
    CHECK_OK(sluice_session_connect(so, &cbs, &st, &s));
    sluice_session_options_free(so);
    WAIT_FOR(st.connected, 1);
    sluice_channel *peer = acceptor_wait(&a, 0);

    /* The peer plays an engine: invoke 2 and 3, a chunk and the close on 2,
       a heartbeat, a terminate, and a frame for a channel nobody opened. */
    uint8_t ping[] = {0x91, 0xa4, 'p', 'i', 'n', 'g'}, data[] = {0x91, 0xa4, 'd', 'a', 't', 'a'};
    uint8_t term[] = {0x92, 0x07, 0xa3, 'b', 'y', 'e'}, one[] = {0x91, 0x01};
    CHECK_OK(sluice_channel_send_frame(peer, 2, 0, ping, sizeof ping));
    CHECK_OK(sluice_channel_send_frame(peer, 3, 0, ping, sizeof ping));
    CHECK_OK(sluice_channel_send_frame(peer, 2, 0, data, sizeof data));
    CHECK_OK(sluice_channel_send_frame(peer, 2, 2, NULL, 0));
    CHECK_OK(sluice_channel_send_frame(peer, 1, 0, NULL, 0));
    CHECK_OK(sluice_channel_send_frame(peer, 1, 1, term, sizeof term));
    CHECK_OK(sluice_channel_send_frame(peer, 9, 5, one, sizeof one));
    const char *want[] = {"invoke 2 ping", "invoke 3 ping", "chunk 2 data", "choke 2", "heartbeat", "terminate 7 bye", "frame 9 5 9101"};
    rec_expect_from(&log, 0, want, 7);

    /* The session answers: a chunk and an error on 2, a close on 3, a frame. */
    CHECK_OK(sluice_session_send_chunk(s, 2, B("pong")));
    CHECK_OK(sluice_session_send_error(s, 2, 42, 7, B("bad")));
    CHECK_OK(sluice_session_send_choke(s, 3));
    CHECK_OK(sluice_session_send_frame(s, 7, 9, one, sizeof one));
    CHECK_RC(sluice_session_send_frame(s, 7, 9, one, 1), SLUICE_E_INVALID);
    sluice_payload *pl = sluice_payload_new(B("kept"));
    CHECK_OK(sluice_session_send_chunk_payload(s, 3, pl));
    sluice_payload_free(pl);
    const char *got[] = {"connect", "frame 2 0 91a4706f6e67", "frame 2 1 92922a07a3626164", "frame 3 2 90", "frame 7 9 9101",
                         "frame 3 0 91a46b657074"};
    rec_expect_from(&raw, 0, got, 6);
    uint64_t next = 0;
    CHECK_OK(sluice_session_next_session(s, &next));
    CHECK(next == 10);
    uint64_t received = 1;
    CHECK_OK(sluice_session_received(s, &received));
    CHECK(received == 0); /* counted only with resume */

    sluice_session_free(s);
    WAIT_FOR(st.released, 1);
    sluice_channel_free(peer);
    sluice_server_free(srv);
    rec_wait_released(&raw);
    acceptor_wait_released(&a);
    rec_destroy(&raw);
    rec_destroy(&log);
    acceptor_destroy(&a);
}

int main(void) {
    RUN(test_typed_messages_and_sends);
    RUN(test_reconnects_after_server_restarts);
    RUN(test_reconnects_in_poll_mode);
    RUN(test_resume_across_cuts);
    return 0;
}
