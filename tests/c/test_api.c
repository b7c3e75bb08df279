/*
 * The API's promises and its misuse: version, result codes and errno
 * constants; NULL arguments; invalid values; calls after close; freeing a
 * channel or a server from inside its own callback; dispatch from inside
 * a callback; the last error per thread; on_release exactly once, and
 * never for a call that failed.
 */
#include "harness.h"

#define B(s) (const uint8_t *)(s), (sizeof(s) - 1)

static void test_version_names_and_errnos(void) {
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", SLUICE_VERSION_MAJOR, SLUICE_VERSION_MINOR, SLUICE_VERSION_PATCH);
    CHECK(strcmp(sluice_version(), want) == 0);
    const char *names[] = {"SLUICE_OK", "SLUICE_E_NULL", "SLUICE_E_INVALID", "SLUICE_E_WOULD_BLOCK",
                           "SLUICE_E_CLOSED", "SLUICE_E_IO", "SLUICE_E_PANIC", "SLUICE_E_REENTRANT",
                           "SLUICE_E_NOT_POLLED", "SLUICE_E_STATE", "SLUICE_E_BUFFER", "SLUICE_E_ENDED",
                           "SLUICE_E_NO_SESSION", "SLUICE_E_SERVICE", "SLUICE_E_NOT_FOUND",
                           "SLUICE_E_UNKNOWN_METHOD", "SLUICE_E_TIMEOUT", "SLUICE_E_DISCONNECTED",
                           "SLUICE_E_BAD_REPLY", "SLUICE_E_WRONG_THREAD", "SLUICE_E_HANDLE", "SLUICE_E_FORKED"};
    int codes[] = {SLUICE_OK, SLUICE_E_NULL, SLUICE_E_INVALID, SLUICE_E_WOULD_BLOCK, SLUICE_E_CLOSED, SLUICE_E_IO,
                   SLUICE_E_PANIC, SLUICE_E_REENTRANT, SLUICE_E_NOT_POLLED, SLUICE_E_STATE, SLUICE_E_BUFFER,
                   SLUICE_E_ENDED, SLUICE_E_NO_SESSION, SLUICE_E_SERVICE, SLUICE_E_NOT_FOUND,
                   SLUICE_E_UNKNOWN_METHOD, SLUICE_E_TIMEOUT, SLUICE_E_DISCONNECTED, SLUICE_E_BAD_REPLY,
                   SLUICE_E_WRONG_THREAD, SLUICE_E_HANDLE, SLUICE_E_FORKED};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        CHECK(codes[i] == (int)i); /* numbered once, in order, never reused */
        CHECK(strcmp(sluice_result_name(codes[i]), names[i]) == 0);
    }
    CHECK(sluice_result_name(-1) == NULL);
    CHECK(sluice_result_name(22) == NULL);
    CHECK(sluice_result_name(1000) == NULL);
    /* The errno constants are Linux's numbers, as <errno.h> has them here. */
    CHECK(SLUICE_ENOENT == ENOENT && SLUICE_EBADF == EBADF && SLUICE_EACCES == EACCES && SLUICE_EPIPE == EPIPE);
    CHECK(SLUICE_EBADMSG == EBADMSG && SLUICE_EMSGSIZE == EMSGSIZE && SLUICE_ECONNRESET == ECONNRESET);
    CHECK(SLUICE_ESHUTDOWN == ESHUTDOWN && SLUICE_ETIMEDOUT == ETIMEDOUT && SLUICE_ECONNREFUSED == ECONNREFUSED);
}

static int release_count;
static void count_release(void *ud) { __atomic_add_fetch((int *)ud, 1, __ATOMIC_SEQ_CST); }

static void test_null_arguments(void) {
    sluice_channel *ch = (sluice_channel *)&ch; /* overwritten with NULL on failure */
    sluice_callbacks cbs = {.on_release = count_release};
    CHECK_RC(sluice_channel_connect(NULL, NULL, &cbs, &release_count, &ch), SLUICE_E_NULL);
    CHECK(ch == NULL);
    CHECK(strstr(sluice_last_error(), "endpoint is NULL") != NULL);
    CHECK_RC(sluice_channel_connect("127.0.0.1:1", NULL, &cbs, &release_count, NULL), SLUICE_E_NULL);
    CHECK(strstr(sluice_last_error(), "out is NULL") != NULL);

    CHECK_RC(sluice_channel_close(NULL), SLUICE_E_NULL);
    CHECK_RC(sluice_channel_abort(NULL), SLUICE_E_NULL);
    CHECK_RC(sluice_channel_send(NULL, B("x")), SLUICE_E_NULL);
    CHECK_RC(sluice_channel_send_chunk(NULL, 2, B("x")), SLUICE_E_NULL);
    CHECK_RC(sluice_channel_send_chunk_payload(NULL, 2, NULL), SLUICE_E_NULL);
    CHECK_RC(sluice_channel_send_choke(NULL, 2), SLUICE_E_NULL);
    CHECK_RC(sluice_channel_send_error(NULL, 2, 42, 1, B("x")), SLUICE_E_NULL);
    CHECK_RC(sluice_channel_send_terminate(NULL, 1, B("x")), SLUICE_E_NULL);
    CHECK_RC(sluice_channel_send_heartbeat(NULL), SLUICE_E_NULL);
    CHECK_RC(sluice_channel_send_handshake(NULL, B("x")), SLUICE_E_NULL);
    CHECK_RC(sluice_channel_send_invoke(NULL, 2, B("x")), SLUICE_E_NULL);
    CHECK_RC(sluice_channel_send_frame(NULL, 2, 0, NULL, 0), SLUICE_E_NULL);
    uint64_t s;
    size_t n;
    CHECK_RC(sluice_channel_next_session(NULL, &s), SLUICE_E_NULL);
    CHECK_RC(sluice_channel_queued(NULL, &n), SLUICE_E_NULL);
    CHECK_RC(sluice_channel_dispatch(NULL, 1, &n), SLUICE_E_NULL);
    CHECK(n == 0);
    CHECK(sluice_channel_fd(NULL) == -1);
    sluice_channel_free(NULL);

    sluice_server *srv = (sluice_server *)&srv;
    char buf[64];
    CHECK_RC(sluice_server_bind(NULL, NULL, NULL, NULL, &srv), SLUICE_E_NULL);
    CHECK(srv == NULL);
    CHECK_RC(sluice_server_bind("127.0.0.1:0", NULL, NULL, NULL, NULL), SLUICE_E_NULL);
    CHECK_RC(sluice_server_endpoint(NULL, buf, sizeof buf, NULL), SLUICE_E_NULL);
    uint16_t port;
    CHECK_RC(sluice_server_port(NULL, &port), SLUICE_E_NULL);
    CHECK_RC(sluice_server_close(NULL), SLUICE_E_NULL);
    CHECK_RC(sluice_server_dispatch(NULL, 1, NULL), SLUICE_E_NULL);
    CHECK(sluice_server_fd(NULL) == -1);
    sluice_server_free(NULL);
    CHECK_RC(sluice_incoming_start(NULL, NULL, NULL, &ch), SLUICE_E_NULL);
    CHECK_RC(sluice_incoming_set_options(NULL, NULL), SLUICE_E_NULL);
    CHECK_RC(sluice_incoming_peer(NULL, buf, sizeof buf, NULL), SLUICE_E_NULL);

    CHECK_RC(sluice_options_set_dialect(NULL, SLUICE_DIALECT_V1), SLUICE_E_NULL);
    CHECK_RC(sluice_options_set_role(NULL, SLUICE_ROLE_NONE), SLUICE_E_NULL);
    CHECK_RC(sluice_options_set_profile(NULL, SLUICE_PROFILE_COMPAT), SLUICE_E_NULL);
    CHECK_RC(sluice_options_set_watermarks(NULL, 2, 1), SLUICE_E_NULL);
    CHECK_RC(sluice_options_set_max_frame_size(NULL, 1), SLUICE_E_NULL);
    CHECK_RC(sluice_options_set_header_table_size(NULL, 1), SLUICE_E_NULL);
    CHECK_RC(sluice_options_set_connect_timeout_ms(NULL, 1), SLUICE_E_NULL);
    CHECK_RC(sluice_options_set_delivery(NULL, SLUICE_DELIVERY_POLL), SLUICE_E_NULL);
    CHECK_RC(sluice_options_set_max_pending(NULL, 1), SLUICE_E_NULL);
    CHECK_RC(sluice_options_set_lenient(NULL, 1), SLUICE_E_NULL);
    int d;
    CHECK_RC(sluice_options_get_dialect(NULL, &d), SLUICE_E_NULL);
    sluice_options_free(NULL);

    CHECK(sluice_payload_retain(NULL) == NULL);
    CHECK(sluice_payload_data(NULL) == NULL);
    CHECK(sluice_payload_len(NULL) == 0);
    CHECK(sluice_payload_new(NULL, 3) == NULL);
    CHECK(sluice_payload_wrap(NULL, 3, count_release, &release_count) == NULL);
    sluice_payload_free(NULL);
    CHECK(release_count == 0); /* no call that failed releases anything */

    /* NULL data is fine with length 0, not otherwise. (A listener that
     * never accepts keeps the channel up: the kernel completes the connect.) */
    uint16_t lport;
    int l = tcp_listen(&lport, 8);
    char lep[64];
    snprintf(lep, sizeof lep, "127.0.0.1:%u", lport);
    rec r;
    rec_init(&r);
    CHECK_OK(sluice_channel_connect(lep, NULL, &REC_CALLBACKS, &r, &ch));
    CHECK_RC(sluice_channel_send_chunk(ch, 2, NULL, 5), SLUICE_E_NULL);
    CHECK(strstr(sluice_last_error(), "data is NULL") != NULL);
    CHECK_OK(sluice_channel_send_chunk(ch, 2, NULL, 0));
    CHECK_RC(sluice_channel_next_session(ch, NULL), SLUICE_E_NULL);
    CHECK_RC(sluice_channel_queued(ch, NULL), SLUICE_E_NULL);
    sluice_channel_free(ch);
    close(l);
    rec_wait_released(&r);
    rec_destroy(&r);
}

static void test_invalid_arguments(void) {
    sluice_callbacks cbs = {.on_release = count_release};
    sluice_channel *ch = NULL;
    const char *bad[] = {"nohost", "host:99999", "host:", "", "\xff\xfe:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_RC(sluice_channel_connect(bad[i], NULL, &cbs, &release_count, &ch), SLUICE_E_INVALID);
        CHECK(ch == NULL);
    }
    sluice_options *o = sluice_options_new();
    CHECK_RC(sluice_options_set_dialect(o, 2), SLUICE_E_INVALID);
    CHECK_RC(sluice_options_set_role(o, -1), SLUICE_E_INVALID);
    CHECK_RC(sluice_options_set_profile(o, 9), SLUICE_E_INVALID);
    CHECK_RC(sluice_options_set_watermarks(o, 1, 2), SLUICE_E_INVALID);
    CHECK_RC(sluice_options_set_watermarks(o, 0, 0), SLUICE_E_INVALID);
    CHECK_RC(sluice_options_set_max_frame_size(o, 0), SLUICE_E_INVALID);
    CHECK_RC(sluice_options_set_delivery(o, 2), SLUICE_E_INVALID);
    CHECK_RC(sluice_options_set_max_pending(o, 0), SLUICE_E_INVALID);
    int d = -1;
    CHECK_OK(sluice_options_get_dialect(o, &d));
    CHECK(d == SLUICE_DIALECT_V1); /* unchanged by the refused calls */
    sluice_options_free(o);
    CHECK_RC(sluice_set_threads(0), SLUICE_E_INVALID);

    /* A Unix server has no port; a small buffer gets the needed length. */
    char path[200], ep[220];
    tmp_sock_path(path, sizeof path, "api");
    snprintf(ep, sizeof ep, "unix:%s", path);
    sluice_server_callbacks scbs = {.on_release = count_release};
    sluice_server *srv = NULL;
    CHECK_OK(sluice_server_bind(ep, NULL, &scbs, &release_count, &srv));
    CHECK_RC(sluice_set_threads(4), SLUICE_E_STATE); /* the runtime runs now */
    uint16_t port = 0;
    CHECK_RC(sluice_server_port(srv, &port), SLUICE_E_INVALID);
    char small[8];
    size_t len = 0;
    CHECK_RC(sluice_server_endpoint(srv, small, sizeof small, &len), SLUICE_E_BUFFER);
    CHECK(len == strlen(ep) && strlen(small) == sizeof small - 1 && strncmp(small, ep, 7) == 0);
    char full[256];
    CHECK_OK(sluice_server_endpoint(srv, full, sizeof full, &len));
    CHECK(strcmp(full, ep) == 0);
    CHECK_RC(sluice_server_endpoint(srv, NULL, 0, &len), SLUICE_E_BUFFER);

    /* A TCP port in use: SLUICE_E_IO with EADDRINUSE. */
    sluice_server *tcp = NULL;
    CHECK_OK(sluice_server_bind("127.0.0.1:0", NULL, NULL, NULL, &tcp));
    char taken[64];
    CHECK_OK(sluice_server_endpoint(tcp, taken, sizeof taken, NULL));
    sluice_server *again = (sluice_server *)&again;
    CHECK_RC(sluice_server_bind(taken, NULL, &scbs, &release_count, &again), SLUICE_E_IO);
    CHECK(again == NULL);
    CHECK(sluice_last_errno() == EADDRINUSE);
    CHECK(strstr(sluice_last_error(), "bind") != NULL);
    sluice_server_free(tcp);

    CHECK(release_count == 0);
    sluice_server_free(srv);
    CHECK(release_count == 1); /* the one bind that succeeded */
    CHECK(access(path, F_OK) != 0);
    release_count = 0;
}

static void *other_thread_error(void *arg) {
    (void)arg;
    /* A fresh thread has no last error. */
    if (strcmp(sluice_last_error(), "") != 0) return (void *)1;
    if (sluice_channel_close(NULL) != SLUICE_E_NULL) return (void *)2;
    if (strstr(sluice_last_error(), "ch is NULL") == NULL) return (void *)3;
    return NULL;
}

static void test_last_error_is_per_thread(void) {
    CHECK_RC(sluice_options_set_dialect(NULL, 0), SLUICE_E_NULL);
    CHECK(strcmp(sluice_last_error(), "opts is NULL") == 0);
    pthread_t t;
    void *res;
    CHECK(pthread_create(&t, NULL, other_thread_error, NULL) == 0);
    pthread_join(t, &res);
    CHECK(res == NULL);
    CHECK(strcmp(sluice_last_error(), "opts is NULL") == 0); /* untouched by the other thread */
    CHECK(sluice_last_errno() == 0); /* not an I/O error */
}

/* A worker/engine pair over a sluice server. */
typedef struct {
    rec engine, worker;
    acceptor acc;
    sluice_server *srv;
    sluice_channel *w, *e;
} pair;

static void pair_open(pair *p, const sluice_options *wopts, void (*tweak)(rec *worker)) {
    rec_init(&p->engine);
    rec_init(&p->worker);
    if (tweak) tweak(&p->worker);
    acceptor_init(&p->acc, &p->engine, 1);
    CHECK_OK(sluice_server_bind("127.0.0.1:0", NULL, &ACCEPT_CALLBACKS, &p->acc, &p->srv));
    char ep[64];
    CHECK_OK(sluice_server_endpoint(p->srv, ep, sizeof ep, NULL));
    CHECK_OK(sluice_channel_connect(ep, wopts, &REC_CALLBACKS, &p->worker, &p->w));
    p->e = acceptor_wait(&p->acc, 0);
}

static void pair_close(pair *p, int free_worker) {
    if (free_worker) sluice_channel_free(p->w);
    sluice_channel_free(p->e);
    sluice_server_free(p->srv);
    rec_wait_released(&p->worker);
    rec_wait_released(&p->engine);
    acceptor_wait_released(&p->acc);
    rec_destroy(&p->worker);
    rec_destroy(&p->engine);
    acceptor_destroy(&p->acc);
}

static void test_calls_after_close(void) {
    pair p;
    pair_open(&p, NULL, NULL);
    const char *c[] = {"connect"};
    rec_expect_from(&p.worker, 0, c, 1);
    rec_expect_from(&p.engine, 0, c, 1);
    CHECK_OK(sluice_channel_close(p.w));
    CHECK_RC(sluice_channel_send(p.w, B("\x93\x01\x00\x90")), SLUICE_E_CLOSED);
    CHECK(strcmp(sluice_last_error(), "the channel is closed") == 0);
    CHECK_RC(sluice_channel_send_chunk(p.w, 2, B("x")), SLUICE_E_CLOSED);
    CHECK_RC(sluice_channel_send_choke(p.w, 2), SLUICE_E_CLOSED);
    CHECK_RC(sluice_channel_send_error(p.w, 2, 42, 1, NULL, 0), SLUICE_E_CLOSED);
    CHECK_RC(sluice_channel_send_terminate(p.w, 1, B("bye")), SLUICE_E_CLOSED);
    CHECK_RC(sluice_channel_send_heartbeat(p.w), SLUICE_E_CLOSED);
    CHECK_RC(sluice_channel_send_handshake(p.w, B("u")), SLUICE_E_CLOSED);
    CHECK_RC(sluice_channel_send_invoke(p.w, 2, B("e")), SLUICE_E_CLOSED);
    CHECK_RC(sluice_channel_send_frame(p.w, 2, 0, NULL, 0), SLUICE_E_CLOSED);
    sluice_payload *pl = sluice_payload_new(B("x"));
    CHECK_RC(sluice_channel_send_chunk_payload(p.w, 2, pl), SLUICE_E_CLOSED);
    sluice_payload_free(pl);
    CHECK_OK(sluice_channel_close(p.w));
    CHECK_OK(sluice_channel_abort(p.w));
    uint64_t s;
    CHECK_OK(sluice_channel_next_session(p.w, &s));
    CHECK_RC(sluice_channel_dispatch(p.w, 1, NULL), SLUICE_E_NOT_POLLED);
    CHECK(sluice_channel_fd(p.w) == -1);
    /* The engine's sends reach nobody: no callback after close. The
     * engine sees the end of stream, or a reset if its heartbeat hit the
     * closed socket first. */
    sluice_channel_send_heartbeat(p.e);
    rec_wait_int(&p.engine, &p.engine.socket_errors, 1, "engine socket errors");
    CHECK(p.engine.last_errno == SLUICE_ESHUTDOWN || p.engine.last_errno == SLUICE_ECONNRESET);
    rec_wait_released(&p.worker);
    rec_expect_quiet(&p.worker, 1, 50);
    pair_close(&p, 1);
}

static void tweak_free_on_connect(rec *w) { w->free_on_connect = 1; }

static void test_free_inside_own_callback(void) {
    /* The worker frees itself in on_connect: a graceful close, nothing
     * more is delivered, on_release once. */
    pair p;
    pair_open(&p, NULL, tweak_free_on_connect);
    int rc = sluice_channel_send_heartbeat(p.e); /* may already see the close */
    CHECK(rc == SLUICE_OK || rc == SLUICE_E_CLOSED);
    rec_wait_int(&p.engine, &p.engine.socket_errors, 1, "engine socket errors");
    CHECK(p.engine.last_errno == SLUICE_ESHUTDOWN || p.engine.last_errno == SLUICE_ECONNRESET);
    CHECK(strcmp(p.engine.lines[0], "connect") == 0 && p.engine.n == 2);
    rec_wait_released(&p.worker);
    rec_expect_quiet(&p.worker, 1, 50);
    CHECK(!p.worker.handle_mismatch);
    pair_close(&p, 0);

    /* Freed in on_socket_error (connection refused): once. */
    uint16_t port;
    int l = tcp_listen(&port, 1);
    close(l);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%u", port);
    rec r;
    rec_init(&r);
    r.free_on_socket_error = 1;
    sluice_channel *ch = NULL;
    CHECK_OK(sluice_channel_connect(ep, NULL, &REC_CALLBACKS, &r, &ch));
    rec_wait_released(&r);
    CHECK(r.socket_errors == 1 && r.ch == ch);
    rec_destroy(&r);
}

/* A server freed from inside its own on_accept. */
typedef struct {
    int released; /* first: count_release counts it */
    rec engine;
} srvctx;

static void accept_and_free(void *ud, sluice_server *s, sluice_incoming *inc) {
    srvctx *c = ud;
    char peer[64];
    size_t len = 0;
    CHECK_OK(sluice_incoming_peer(inc, peer, sizeof peer, &len));
    CHECK(strncmp(peer, "127.0.0.1:", 10) == 0 && len == strlen(peer));
    sluice_server_free(s);
    /* `inc` is still valid: start it after freeing the server. */
    sluice_channel *ch = NULL;
    CHECK_OK(sluice_incoming_start(inc, &REC_CALLBACKS, &c->engine, &ch));
    CHECK_OK(sluice_channel_send_heartbeat(ch));
    sluice_channel_free(ch);
}

static void test_server_freed_inside_on_accept(void) {
    srvctx c = {0};
    rec_init(&c.engine);
    sluice_server_callbacks cbs = {accept_and_free, count_release};
    sluice_server *srv = NULL;
    CHECK_OK(sluice_server_bind("127.0.0.1:0", NULL, &cbs, &c, &srv));
    uint16_t port = server_port(srv);
    int fd = tcp_connect_port(port);
    /* The channel started inside on_accept wrote its heartbeat, then closed. */
    uint8_t b[4];
    read_exact(fd, b, 4);
    CHECK(memcmp(b, "\x93\x01\x00\x90", 4) == 0);
    CHECK(wait_readable(fd, timeout_ms()) && recv(fd, b, 1, 0) == 0);
    rec_wait_released(&c.engine);
    rec_destroy(&c.engine);
    int64_t end = now_ms() + timeout_ms();
    while (__atomic_load_n(&c.released, __ATOMIC_SEQ_CST) == 0 && now_ms() < end) sleep_ms(2);
    CHECK(c.released == 1);
    /* Nothing listens any more. */
    int again = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(connect(again, (struct sockaddr *)&a, sizeof a) != 0 && errno == ECONNREFUSED);
    close(again);
    close(fd);
}

static void test_unstarted_incoming_is_closed(void) {
    rec none;
    acceptor a;
    acceptor_init(&a, &none, 0); /* cap 0: on_accept starts nothing */
    sluice_server *srv = NULL;
    CHECK_OK(sluice_server_bind("127.0.0.1:0", NULL, &ACCEPT_CALLBACKS, &a, &srv));
    int fd = tcp_connect_port(server_port(srv));
    uint8_t b;
    CHECK(wait_readable(fd, timeout_ms()));
    CHECK(recv(fd, &b, 1, 0) == 0); /* closed by the server */
    close(fd);
    sluice_server_free(srv);
    acceptor_wait_released(&a);
    acceptor_destroy(&a);
}

static void tweak_dispatch_in_connect(rec *w) { w->try_dispatch = 1; }

static void accept_dispatching(void *ud, sluice_server *s, sluice_incoming *inc) {
    *(int *)ud = sluice_server_dispatch(s, SIZE_MAX, NULL);
    (void)inc;
}

static void test_dispatch_inside_callback(void) {
    /* Poll mode: dispatch from inside the channel's own callback is
     * refused; the outer dispatch goes on. */
    sluice_options *o = sluice_options_new();
    CHECK_OK(sluice_options_set_delivery(o, SLUICE_DELIVERY_POLL));
    pair p;
    pair_open(&p, o, tweak_dispatch_in_connect);
    sluice_options_free(o);
    int fd = sluice_channel_fd(p.w);
    CHECK(fd >= 0);
    CHECK(wait_readable(fd, timeout_ms()));
    size_t ran = 0;
    CHECK_OK(sluice_channel_dispatch(p.w, SIZE_MAX, &ran));
    CHECK(ran == 1);
    CHECK_RC(p.worker.dispatch_rc, SLUICE_E_REENTRANT);
    CHECK(pthread_equal(p.worker.thread, pthread_self()));
    CHECK(!wait_readable(fd, 0)); /* level-triggered: nothing left, not readable */
    /* Inline channels are not dispatched. */
    CHECK_RC(sluice_channel_dispatch(p.e, 1, NULL), SLUICE_E_NOT_POLLED);
    CHECK_RC(sluice_server_dispatch(p.srv, 1, NULL), SLUICE_E_NOT_POLLED);
    CHECK(sluice_server_fd(p.srv) == -1);
    pair_close(&p, 1);

    /* A poll-mode server: dispatch from inside on_accept is refused. */
    sluice_options *so = sluice_options_new();
    CHECK_OK(sluice_options_set_delivery(so, SLUICE_DELIVERY_POLL));
    int inner = -1;
    sluice_server_callbacks cbs = {accept_dispatching, NULL};
    sluice_server *srv = NULL;
    CHECK_OK(sluice_server_bind("127.0.0.1:0", so, &cbs, &inner, &srv));
    sluice_options_free(so);
    int sfd = sluice_server_fd(srv);
    CHECK(sfd >= 0);
    int c = tcp_connect_port(server_port(srv));
    CHECK(wait_readable(sfd, timeout_ms()));
    CHECK_OK(sluice_server_dispatch(srv, SIZE_MAX, &ran));
    CHECK(ran == 1);
    CHECK_RC(inner, SLUICE_E_REENTRANT);
    close(c);
    sluice_server_free(srv);
}

/* Process-wide settings by name, through the one table every binding uses. */
static void test_process_settings(void) {
    char buf[32];
    size_t len = 0;
    CHECK(sluice_set("service_idle_timeout", "1500") == SLUICE_OK);
    CHECK(sluice_get("service_idle_timeout", buf, sizeof buf, &len) == SLUICE_OK);
    CHECK(strcmp(buf, "1500") == 0 && len == 4);
    CHECK(sluice_set("service_idle_timeout", "null") == SLUICE_OK);
    CHECK(sluice_get("service_idle_timeout", buf, sizeof buf, NULL) == SLUICE_OK && strcmp(buf, "null") == 0);
    CHECK(sluice_set("service_idle_timeout", "300000") == SLUICE_OK);
    CHECK(sluice_set("max_service_connections", "0") == SLUICE_E_INVALID);
    CHECK(strcmp(sluice_last_error(), "max_service_connections: must be a whole number from 1 to 4294967295, got 0") == 0);
    CHECK(sluice_set("no_such_setting", "1") == SLUICE_E_INVALID);
    CHECK(strcmp(sluice_last_error(), "no_such_setting: unknown setting") == 0);
    CHECK(sluice_get("max_service_connections", buf, 2, &len) == SLUICE_E_BUFFER && len > 1);
    CHECK(sluice_set(NULL, "1") == SLUICE_E_NULL);
}

int main(void) {
    RUN(test_version_names_and_errnos);
    RUN(test_null_arguments);
    RUN(test_invalid_arguments);
    RUN(test_last_error_is_per_thread);
    RUN(test_calls_after_close);
    RUN(test_free_inside_own_callback);
    RUN(test_server_freed_inside_on_accept);
    RUN(test_unstarted_incoming_is_closed);
    RUN(test_dispatch_inside_callback);
    RUN(test_process_settings);
    return 0;
}
