/*
 * Poll delivery: callbacks run on the thread that dispatches, the file
 * descriptor is level-triggered, a poll-mode server delivers accepts the
 * same way, chunks are echoed by forwarding their payload, and a channel
 * may free itself from inside a dispatched callback.
 */
#include "harness.h"

#define B(s) (const uint8_t *)(s), (sizeof(s) - 1)

/* Dispatches every channel/server with a readable fd until `done` holds or
 * the timeout passes. */
typedef int (*done_fn)(void *);

static void pump(sluice_channel **chans, int nch, sluice_server *srv, done_fn done, void *arg) {
    int64_t end = now_ms() + timeout_ms();
    while (!done(arg)) {
        if (now_ms() > end) FAILF("pump: timed out");
        struct pollfd p[8];
        int n = 0;
        for (int i = 0; i < nch; i++)
            if (chans[i]) p[n++] = (struct pollfd){sluice_channel_fd(chans[i]), POLLIN, 0};
        if (srv) p[n++] = (struct pollfd){sluice_server_fd(srv), POLLIN, 0};
        if (poll(p, (nfds_t)n, 10) <= 0) continue;
        int k = 0;
        for (int i = 0; i < nch; i++) {
            if (!chans[i]) continue;
            if (p[k++].revents & POLLIN) CHECK_OK(sluice_channel_dispatch(chans[i], SIZE_MAX, NULL));
        }
        if (srv && (p[k].revents & POLLIN)) CHECK_OK(sluice_server_dispatch(srv, SIZE_MAX, NULL));
    }
}

typedef struct {
    rec *r;
    int lines;
} want_lines;

static int has_lines(void *arg) {
    want_lines *w = arg;
    pthread_mutex_lock(&w->r->mu);
    int ok = w->r->n >= w->lines;
    pthread_mutex_unlock(&w->r->mu);
    return ok;
}

/* The engine (poll-mode server and channel) invokes; the worker (poll
 * mode) echoes each chunk by forwarding its payload; all on this thread. */
static void test_poll_mode_echo_on_the_dispatching_thread(void) {
    sluice_options *po = sluice_options_new();
    CHECK_OK(sluice_options_set_delivery(po, SLUICE_DELIVERY_POLL));
    rec engine, worker;
    rec_init(&engine);
    rec_init(&worker);
    worker.echo = 1;
    acceptor a;
    acceptor_init(&a, &engine, 1);
    char path[200], ep[220];
    tmp_sock_path(path, sizeof path, "poll");
    snprintf(ep, sizeof ep, "unix:%s", path);
    sluice_server *srv = NULL;
    CHECK_OK(sluice_server_bind(ep, po, &ACCEPT_CALLBACKS, &a, &srv));
    CHECK(sluice_server_fd(srv) >= 0);
    sluice_channel *w = NULL;
    CHECK_OK(sluice_channel_connect(ep, po, &REC_CALLBACKS, &worker, &w));
    sluice_options_free(po);
    CHECK_OK(sluice_channel_send_handshake(w, B("poller")));

    /* The accept arrives only by dispatch, on this thread. */
    sluice_channel *chans[2] = {w, NULL};
    pump(chans, 1, srv, (done_fn)has_lines, &(want_lines){&worker, 1});
    int64_t end = now_ms() + timeout_ms();
    while (a.n == 0) {
        if (now_ms() > end) FAILF("no accept");
        if (wait_readable(sluice_server_fd(srv), 10)) CHECK_OK(sluice_server_dispatch(srv, SIZE_MAX, NULL));
    }
    sluice_channel *e = a.chans[0];
    chans[1] = e;
    pump(chans, 2, NULL, (done_fn)has_lines, &(want_lines){&engine, 2});
    const char *e_hello[] = {"connect", "handshake \"poller\""};
    rec_expect_from(&engine, 0, e_hello, 2);

    for (int s = 0; s < 3; s++) {
        uint64_t id;
        CHECK_OK(sluice_channel_next_session(e, &id));
        CHECK_OK(sluice_channel_send_invoke(e, id, B("echo")));
        CHECK_OK(sluice_channel_send_chunk(e, id, B("one")));
        CHECK_OK(sluice_channel_send_chunk(e, id, B("two")));
        CHECK_OK(sluice_channel_send_choke(e, id));
    }
    pump(chans, 2, NULL, (done_fn)has_lines, &(want_lines){&engine, 2 + 9});
    const char *e_want[] = {"chunk 2 \"one\"", "chunk 2 \"two\"", "choke 2", "chunk 3 \"one\"", "chunk 3 \"two\"",
                            "choke 3",         "chunk 4 \"one\"", "chunk 4 \"two\"", "choke 4"};
    rec_expect_from(&engine, 2, e_want, 9);
    const char *w_want[] = {"connect", "invoke 2 \"echo\"", "chunk 2 \"one\"", "chunk 2 \"two\"", "choke 2"};
    rec_expect_from(&worker, 0, w_want, 5);
    /* Every callback ran here. */
    CHECK(pthread_equal(worker.thread, pthread_self()));
    CHECK(pthread_equal(engine.thread, pthread_self()));
    CHECK(!worker.handle_mismatch && !engine.handle_mismatch && worker.ch == w && engine.ch == e);
    /* Level-triggered: everything dispatched, nothing readable. */
    CHECK(!wait_readable(sluice_channel_fd(w), 20));
    CHECK(!wait_readable(sluice_channel_fd(e), 0));

    sluice_channel_free(w);
    sluice_channel_free(e);
    sluice_server_free(srv);
    rec_wait_released(&worker);
    rec_wait_released(&engine);
    acceptor_wait_released(&a);
    rec_destroy(&worker);
    rec_destroy(&engine);
    acceptor_destroy(&a);
}

/* A poll-mode channel frees itself in a dispatched on_chunk: the rest of
 * the batch is not delivered, dispatch returns normally, release once. */
static void test_free_inside_dispatch(void) {
    uint16_t port;
    int l = tcp_listen(&port, 8);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%u", port);
    sluice_options *o = sluice_options_new();
    CHECK_OK(sluice_options_set_delivery(o, SLUICE_DELIVERY_POLL));
    rec r;
    rec_init(&r);
    r.free_on_chunk = 1;
    sluice_channel *ch = NULL;
    CHECK_OK(sluice_channel_connect(ep, o, &REC_CALLBACKS, &r, &ch));
    sluice_options_free(o);
    int peer = tcp_accept(l);
    uint8_t b[64];
    size_t n = hex_decode("93020091a470696e67 93020091a141 93020091a142 93020290", b, sizeof b);
    write_all(peer, b, n);
    int fd = sluice_channel_fd(ch);
    /* Wait until the whole batch is queued, then dispatch it at once. */
    sleep_ms(under_valgrind() ? 500 : 50);
    CHECK(wait_readable(fd, timeout_ms()));
    size_t ran = 0;
    CHECK_OK(sluice_channel_dispatch(ch, SIZE_MAX, &ran));
    /* `ch` is freed now: do not touch it again. */
    CHECK(ran == 3);
    const char *want[] = {"connect", "invoke 2 \"ping\"", "chunk 2 \"A\""};
    rec_expect_from(&r, 0, want, 3);
    rec_wait_released(&r);
    rec_expect_quiet(&r, 3, 20);
    CHECK(r.kept && sluice_payload_len(r.kept) == 1 && sluice_payload_data(r.kept)[0] == 'A');
    rec_destroy(&r); /* frees the payload it kept beyond the channel's life */
    close(peer);
    close(l);
}

int main(void) {
    RUN(test_poll_mode_echo_on_the_dispatching_thread);
    RUN(test_free_inside_dispatch);
    return 0;
}
