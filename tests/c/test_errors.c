/*
 * Every way a connection fails gives exactly one on_socket_error with the
 * errno of docs/PROTOCOL.md §8.3, nothing after it, and leaves the other
 * channels working: a sluice worker/engine pair (the bystanders) exchanges
 * a heartbeat after each case.
 */
#include "harness.h"

#include <signal.h>

static rec by_engine, by_worker;
static acceptor by_acceptor;
static sluice_server *by_server;
static sluice_channel *by_channel;
static int by_rounds;

static void bystanders_start(void) {
    rec_init(&by_engine);
    rec_init(&by_worker);
    acceptor_init(&by_acceptor, &by_engine, 1);
    char path[200], ep[220];
    tmp_sock_path(path, sizeof path, "bystander");
    snprintf(ep, sizeof ep, "unix:%s", path);
    CHECK_OK(sluice_server_bind(ep, NULL, &ACCEPT_CALLBACKS, &by_acceptor, &by_server));
    CHECK_OK(sluice_channel_connect(path, NULL, &REC_CALLBACKS, &by_worker, &by_channel));
    CHECK_OK(sluice_channel_send_handshake(by_channel, (const uint8_t *)"bystander", 9));
    const char *w[] = {"connect"};
    const char *e[] = {"connect", "handshake \"bystander\""};
    rec_expect_from(&by_worker, 0, w, 1);
    rec_expect_from(&by_engine, 0, e, 2);
}

/* The bystanders still talk: worker heartbeat -> engine, engine reply -> worker. */
static void bystanders_check(void) {
    CHECK_OK(sluice_channel_send_heartbeat(by_channel));
    const char *hb[] = {"heartbeat"};
    rec_expect_from(&by_engine, 2 + by_rounds, hb, 1);
    CHECK_OK(sluice_channel_send_heartbeat(acceptor_wait(&by_acceptor, 0)));
    rec_expect_from(&by_worker, 1 + by_rounds, hb, 1);
    by_rounds++;
}

static void bystanders_stop(void) {
    sluice_channel_free(by_channel);
    sluice_channel_free(acceptor_wait(&by_acceptor, 0));
    sluice_server_free(by_server);
    rec_wait_released(&by_worker);
    rec_wait_released(&by_engine);
    acceptor_wait_released(&by_acceptor);
    rec_destroy(&by_worker);
    rec_destroy(&by_engine);
    acceptor_destroy(&by_acceptor);
}

/* The last event is the one socket error, and nothing follows. */
static void expect_one_error(rec *r, int err) {
    rec_wait_int(r, &r->socket_errors, 1, "socket errors");
    sleep_ms(50);
    pthread_mutex_lock(&r->mu);
    int n = r->n, count = r->socket_errors, got = r->last_errno;
    char *last = r->lines[n - 1];
    char want[32];
    snprintf(want, sizeof want, "socket_error %d", err);
    int ok = count == 1 && got == err && strcmp(last, want) == 0;
    pthread_mutex_unlock(&r->mu);
    if (!ok) {
        rec_dump(r);
        FAILF("want exactly one socket_error %d, last", err);
    }
}

static sluice_channel *connect_rec(const char *ep, rec *r, const sluice_options *o) {
    sluice_channel *ch = NULL;
    rec_init(r);
    CHECK_OK(sluice_channel_connect(ep, o, &REC_CALLBACKS, r, &ch));
    return ch;
}

static void finish(sluice_channel *ch, rec *r) {
    /* Sends after the end are refused. */
    CHECK_RC(sluice_channel_send_heartbeat(ch), SLUICE_E_CLOSED);
    sluice_channel_free(ch);
    rec_wait_released(r);
    rec_destroy(r);
    bystanders_check();
}

static void test_refused(void) {
    uint16_t port;
    int l = tcp_listen(&port, 1);
    close(l);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%u", port);
    rec r;
    sluice_channel *ch = connect_rec(ep, &r, NULL);
    expect_one_error(&r, SLUICE_ECONNREFUSED);
    CHECK(r.n == 1); /* no on_connect */
    finish(ch, &r);
}

static void test_missing_unix_path(void) {
    char path[200];
    tmp_sock_path(path, sizeof path, "missing");
    rec r;
    sluice_channel *ch = connect_rec(path, &r, NULL);
    expect_one_error(&r, SLUICE_ENOENT);
    finish(ch, &r);
}

/* A raw peer that accepts, then does `act` to the connection. */
static void with_peer(int err, const sluice_options *o, void (*act)(int fd)) {
    uint16_t port;
    int l = tcp_listen(&port, 8);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%u", port);
    rec r;
    sluice_channel *ch = connect_rec(ep, &r, o);
    int peer = tcp_accept(l);
    const char *c[] = {"connect"};
    rec_expect_from(&r, 0, c, 1);
    act(peer);
    expect_one_error(&r, err);
    close(peer);
    close(l);
    finish(ch, &r);
}

static void act_close(int fd) {
    uint8_t b[16];
    size_t n = hex_decode("93010090", b, sizeof b);
    write_all(fd, b, n);
    shutdown(fd, SHUT_WR);
}

static void test_end_of_stream(void) { with_peer(SLUICE_ESHUTDOWN, NULL, act_close); }

static void test_reset(void) {
    uint16_t port;
    int l = tcp_listen(&port, 8);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%u", port);
    rec r;
    sluice_channel *ch = connect_rec(ep, &r, NULL);
    int peer = tcp_accept(l);
    const char *c[] = {"connect"};
    rec_expect_from(&r, 0, c, 1);
    set_linger0(peer);
    close(peer); /* SO_LINGER 0: the close sends an RST */
    expect_one_error(&r, SLUICE_ECONNRESET);
    close(l);
    finish(ch, &r);
}

static void act_garbage(int fd) {
    uint8_t b[16];
    size_t n = hex_decode("93010090 c1 93010090", b, sizeof b); /* v1_invalid_msgpack_c1 */
    write_all(fd, b, n);
}

static void test_garbage(void) {
    uint16_t port;
    int l = tcp_listen(&port, 8);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%u", port);
    rec r;
    sluice_channel *ch = connect_rec(ep, &r, NULL);
    int peer = tcp_accept(l);
    act_garbage(peer);
    char bad[32];
    snprintf(bad, sizeof bad, "socket_error %d", SLUICE_EBADMSG);
    const char *want[] = {"connect", "heartbeat", bad}; /* the good frame first */
    rec_expect_from(&r, 0, want, 3);
    expect_one_error(&r, SLUICE_EBADMSG);
    close(peer);
    close(l);
    finish(ch, &r);
}

static void act_oversize(int fd) {
    uint8_t b[16];
    size_t n = hex_decode("93020091c6 00200000", b, sizeof b); /* declares a 2 MiB chunk, sends nothing more */
    write_all(fd, b, n);
}

static void test_oversize(void) {
    sluice_options *o = sluice_options_new();
    CHECK_OK(sluice_options_set_max_frame_size(o, 1 << 20));
    with_peer(SLUICE_EMSGSIZE, o, act_oversize);
    sluice_options_free(o);
}

static void test_connect_timeout(void) {
    /* A listener that never accepts, its backlog full: further SYNs are
     * dropped, so a connect hangs until our timeout. */
    uint16_t port;
    int l = tcp_listen(&port, 0);
    int fillers[16], nf = 0, full = 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    while (nf < 16 && !full) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        CHECK(fd >= 0);
        fillers[nf++] = fd;
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) continue;
        CHECK(errno == EINPROGRESS);
        struct pollfd p = {fd, POLLOUT, 0};
        if (poll(&p, 1, 200) == 0) full = 1;
    }
    sluice_options *o = sluice_options_new();
    CHECK_OK(sluice_options_set_connect_timeout_ms(o, 300));
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%u", port);
    rec r;
    sluice_channel *ch = connect_rec(ep, &r, o);
    sluice_options_free(o);
    rec_wait_lines(&r, 1);
    if (strcmp(r.lines[0], "connect") == 0) {
        printf("# this kernel accepted past the backlog: connect timeout not testable here\n");
        sluice_channel_abort(ch);
        sluice_channel_free(ch);
        rec_wait_released(&r);
        rec_destroy(&r);
    } else {
        expect_one_error(&r, SLUICE_ETIMEDOUT);
        finish(ch, &r);
    }
    for (int i = 0; i < nf; i++) close(fillers[i]);
    close(l);
}

/* A close before the failure: the failure is not reported. */
static void test_no_error_after_close(void) {
    uint16_t port;
    int l = tcp_listen(&port, 8);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%u", port);
    rec r;
    sluice_channel *ch = connect_rec(ep, &r, NULL);
    int peer = tcp_accept(l);
    const char *c[] = {"connect"};
    rec_expect_from(&r, 0, c, 1);
    CHECK_OK(sluice_channel_close(ch));
    set_linger0(peer);
    close(peer);
    rec_wait_released(&r);
    rec_expect_quiet(&r, 1, 50);
    sluice_channel_free(ch);
    rec_destroy(&r);
    close(l);
    bystanders_check();
}

/* A C program does not ignore SIGPIPE: a send (which may write from the
 * caller's thread, on an idle connection) to a peer that has just gone
 * must fail, not kill the program. Unix sockets report EPIPE at once, so
 * each round races the library's reader for the end of stream. */
static int unix_listen(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    CHECK(strlen(path) < sizeof a.sun_path);
    memcpy(a.sun_path, path, strlen(path) + 1);
    unlink(path);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(fd, 8) == 0);
    return fd;
}

static void test_no_sigpipe_for_the_host(void) {
    signal(SIGPIPE, SIG_DFL);
    sigset_t before, after;
    pthread_sigmask(SIG_BLOCK, NULL, &before);
    char path[200];
    tmp_sock_path(path, sizeof path, "sigpipe");
    int l = unix_listen(path);
    int rounds = under_valgrind() ? 20 : 100;
    for (int i = 0; i < rounds; i++) {
        rec r;
        sluice_channel *ch = connect_rec(path, &r, NULL);
        if (!wait_readable(l, timeout_ms())) FAILF("no connection");
        int peer = accept(l, NULL, NULL);
        CHECK(peer >= 0);
        const char *c[] = {"connect"};
        rec_expect_from(&r, 0, c, 1);
        close(peer);
        int rc = SLUICE_OK;
        for (int k = 0; k < 1000 && rc == SLUICE_OK; k++) {
            rc = sluice_channel_send_chunk(ch, 2, (const uint8_t *)"after the peer left", 19);
            if (k > 2) usleep(100);
        }
        CHECK_RC(rc, SLUICE_E_CLOSED);
        rec_wait_int(&r, &r.socket_errors, 1, "socket errors");
        CHECK(r.last_errno == SLUICE_EPIPE || r.last_errno == SLUICE_ECONNRESET || r.last_errno == SLUICE_ESHUTDOWN);
        sluice_channel_free(ch);
        rec_wait_released(&r);
        rec_destroy(&r);
    }
    pthread_sigmask(SIG_BLOCK, NULL, &after);
    CHECK(sigismember(&before, SIGPIPE) == sigismember(&after, SIGPIPE)); /* our mask is ours again */
    sigset_t pending;
    sigpending(&pending);
    CHECK(!sigismember(&pending, SIGPIPE));
    close(l);
    unlink(path);
    bystanders_check();
}

int main(void) {
    bystanders_start();
    RUN(test_refused);
    RUN(test_missing_unix_path);
    RUN(test_end_of_stream);
    RUN(test_reset);
    RUN(test_garbage);
    RUN(test_oversize);
    RUN(test_connect_timeout);
    RUN(test_no_error_after_close);
    RUN(test_no_sigpipe_for_the_host);
    bystanders_stop();
    return 0;
}
