/*
 * Typed sends put exactly the vector bytes on the wire (a raw peer reads
 * and compares them; the vector names are from core/tests/vectors.json).
 */
#include "harness.h"

#define UUID "6d0b4c1e-3f5a-4c8e-9a52-2b7f0e9d1c33"
#define B(s) (const uint8_t *)(s), (sizeof(s) - 1)

typedef struct {
    int listener;
    int peer;
    sluice_channel *ch;
    rec r;
} pair;

/* A sluice channel connected to a raw peer. `before` runs between connect
 * and accept: sends made there are queued until the connection is up. */
static void pair_open(pair *p, int dialect, int role, int profile, void (*before)(sluice_channel *)) {
    uint16_t port;
    p->listener = tcp_listen(&port, 8);
    char ep[64];
    snprintf(ep, sizeof ep, "localhost:%u", port);
    sluice_options *o = opts_make(dialect, role);
    CHECK_OK(sluice_options_set_profile(o, profile));
    rec_init(&p->r);
    CHECK_OK(sluice_channel_connect(ep, o, &REC_CALLBACKS, &p->r, &p->ch));
    sluice_options_free(o);
    if (before) before(p->ch);
    p->peer = tcp_accept(p->listener);
}

/* Close: what was queued is written, then the peer sees the end of stream. */
static void pair_close(pair *p) {
    CHECK_OK(sluice_channel_close(p->ch));
    CHECK_RC(sluice_channel_send_heartbeat(p->ch), SLUICE_E_CLOSED);
    uint8_t b;
    CHECK(wait_readable(p->peer, timeout_ms()));
    CHECK(recv(p->peer, &b, 1, 0) == 0);
    sluice_channel_free(p->ch);
    rec_wait_released(&p->r);
    rec_destroy(&p->r);
    close(p->peer);
    close(p->listener);
}

static void handshake_first(sluice_channel *ch) { CHECK_OK(sluice_channel_send_handshake(ch, B(UUID))); }

static void test_v1_worker_sends(void) {
    pair p;
    pair_open(&p, SLUICE_DIALECT_V1, SLUICE_ROLE_WORKER, SLUICE_PROFILE_COMPAT, handshake_first);
    /* v1_handshake, queued before the connection was up */
    expect_bytes(p.peer, "93010091da0024" "36643062346331652d336635612d346338652d396135322d326237663065396431633333", "handshake");
    CHECK_OK(sluice_channel_send_heartbeat(p.ch));
    expect_bytes(p.peer, "93010090", "v1_heartbeat");
    CHECK_OK(sluice_channel_send_chunk(p.ch, 2, B("pong")));
    expect_bytes(p.peer, "93020091a4706f6e67", "chunk pong");
    CHECK_OK(sluice_channel_send_error(p.ch, 2, 42, 200, B("there is no handler for event foo")));
    expect_bytes(p.peer,
                 "93020192922accc8da0021"
                 "7468657265206973206e6f2068616e646c657220666f72206576656e7420666f6f",
                 "v1_error_worker_no_handler");
    CHECK_OK(sluice_channel_send_choke(p.ch, 3));
    expect_bytes(p.peer, "93030290", "close");
    CHECK_OK(sluice_channel_send_error(p.ch, 1, 7, 5, NULL, 0));
    expect_bytes(p.peer, "93010191920705", "v1_error_without_message");
    CHECK_OK(sluice_channel_send_terminate(p.ch, 1, B("self-terminating")));
    expect_bytes(p.peer, "9301019201b073656c662d7465726d696e6174696e67", "v1_terminate_worker");
    CHECK_OK(sluice_channel_send_chunk(p.ch, 2, NULL, 0));
    expect_bytes(p.peer, "93020091a0", "v1_write_empty_str");
    expect_no_bytes(p.peer, 50);
    pair_close(&p);
}

static void test_v1_modern_profile_sends_bin(void) {
    pair p;
    pair_open(&p, SLUICE_DIALECT_V1, SLUICE_ROLE_WORKER, SLUICE_PROFILE_MODERN, NULL);
    CHECK_OK(sluice_channel_send_chunk(p.ch, 2, B("\x00\xff" "binary")));
    expect_bytes(p.peer, "93020091c40800ff62696e617279", "v1_write_worker_bin");
    pair_close(&p);
}

static void test_v1_engine_sends(void) {
    pair p;
    pair_open(&p, SLUICE_DIALECT_V1, SLUICE_ROLE_ENGINE, SLUICE_PROFILE_COMPAT, NULL);
    uint64_t s = 0;
    CHECK_OK(sluice_channel_next_session(p.ch, &s));
    CHECK(s == 2);
    CHECK_OK(sluice_channel_send_invoke(p.ch, s, B("ping")));
    expect_bytes(p.peer, "93020091a470696e67", "v1_invoke_no_headers");
    CHECK_OK(sluice_channel_next_session(p.ch, &s));
    CHECK(s == 3);
    CHECK_OK(sluice_channel_send_heartbeat(p.ch));
    expect_bytes(p.peer, "93010090", "heartbeat reply");
    CHECK_OK(sluice_channel_send_terminate(p.ch, 12, B("slave is idle")));
    expect_bytes(p.peer, "930101920cad736c6176652069732069646c65", "v1_terminate_engine");
    pair_close(&p);
}

static void test_v0_worker_sends(void) {
    pair p;
    pair_open(&p, SLUICE_DIALECT_V0, SLUICE_ROLE_WORKER, SLUICE_PROFILE_MODERN /* ignored in v0 */, handshake_first);
    expect_bytes(p.peer, "93000091da0024" "36643062346331652d336635612d346338652d396135322d326237663065396431633333", "v0_handshake");
    CHECK_OK(sluice_channel_send_heartbeat(p.ch));
    expect_bytes(p.peer, "93010090", "v0_heartbeat");
    CHECK_OK(sluice_channel_send_chunk(p.ch, 1, B("\x93\x01\xff\x00" "binary")));
    expect_bytes(p.peer, "93040191aa9301ff0062696e617279", "v0_chunk_binary_raw");
    CHECK_OK(sluice_channel_send_error(p.ch, 1, 42 /* ignored */, 410, B("no event handler for event \"foo\"")));
    expect_bytes(p.peer, "93050192cd019ada00206e6f206576656e742068616e646c657220666f72206576656e742022666f6f22",
                 "v0_error_worker_no_handler");
    CHECK_OK(sluice_channel_send_choke(p.ch, 1));
    expect_bytes(p.peer, "93060190", "v0_choke");
    CHECK_OK(sluice_channel_send_terminate(p.ch, 2, B("unable to load the application")));
    expect_bytes(p.peer, "9302009202be756e61626c6520746f206c6f616420746865206170706c69636174696f6e",
                 "v0_terminate_worker_abnormal");
    pair_close(&p);
}

static void test_v0_engine_sends(void) {
    pair p;
    pair_open(&p, SLUICE_DIALECT_V0, SLUICE_ROLE_ENGINE, SLUICE_PROFILE_COMPAT, NULL);
    CHECK_OK(sluice_channel_send_invoke(p.ch, 1, B("http")));
    expect_bytes(p.peer, "93030191a468747470", "v0_invoke");
    CHECK_OK(sluice_channel_send_heartbeat(p.ch));
    expect_bytes(p.peer, "93010090", "v0_heartbeat_reply");
    CHECK_OK(sluice_channel_send_terminate(p.ch, 1, B("the engine is shutting down")));
    expect_bytes(p.peer, "9302009201bb74686520656e67696e65206973207368757474696e6720646f776e", "v0_terminate_engine_normal");
    pair_close(&p);
}

static void test_generic_and_raw_sends(void) {
    pair p;
    pair_open(&p, SLUICE_DIALECT_V1, SLUICE_ROLE_NONE, SLUICE_PROFILE_COMPAT, NULL);
    uint8_t args[32];
    size_t n = hex_decode("91a773746f72616765", args, sizeof args);
    CHECK_OK(sluice_channel_send_frame(p.ch, 1, 0, args, n));
    expect_bytes(p.peer, "93010091a773746f72616765", "v1_locator_resolve_request_node");
    CHECK_OK(sluice_channel_send_frame(p.ch, 1, 1, NULL, 0));
    expect_bytes(p.peer, "93010190", "v1_logging_verbosity_request");
    /* Not one msgpack array: refused, nothing sent. */
    CHECK_RC(sluice_channel_send_frame(p.ch, 1, 0, args, n - 1), SLUICE_E_INVALID);
    CHECK_RC(sluice_channel_send_frame(p.ch, 1, 0, (const uint8_t *)"\xa1x", 2), SLUICE_E_INVALID);
    uint8_t raw[64];
    n = hex_decode("94010091a773746f7261676590", raw, sizeof raw);
    CHECK_OK(sluice_channel_send(p.ch, raw, n));
    expect_bytes(p.peer, "94010091a773746f7261676590", "v1_locator_resolve_request (raw)");
    expect_no_bytes(p.peer, 50);
    pair_close(&p);
}

static int released_ctx;

static void count_release(void *ctx) { __atomic_add_fetch((int *)ctx, 1, __ATOMIC_SEQ_CST); }

static void test_payload_sends(void) {
    pair p;
    pair_open(&p, SLUICE_DIALECT_V1, SLUICE_ROLE_WORKER, SLUICE_PROFILE_COMPAT, NULL);
    sluice_payload *small = sluice_payload_new(B("pong"));
    CHECK_OK(sluice_channel_send_chunk_payload(p.ch, 2, small));
    sluice_payload_free(small);
    expect_bytes(p.peer, "93020091a4706f6e67", "chunk from a payload");
    /* 4 KiB of caller memory, lent without a copy: released once written
     * and freed. */
    size_t n = 4096;
    uint8_t *mem = malloc(n);
    for (size_t i = 0; i < n; i++) mem[i] = (uint8_t)i;
    sluice_payload *lent = sluice_payload_wrap(mem, n, count_release, &released_ctx);
    CHECK(sluice_payload_data(lent) == mem && sluice_payload_len(lent) == n);
    CHECK_OK(sluice_channel_send_chunk_payload(p.ch, 2, lent));
    sluice_payload_free(lent);
    uint8_t head[7], *body = malloc(n);
    read_exact(p.peer, head, sizeof head);
    CHECK(memcmp(head, "\x93\x02\x00\x91\xda\x10\x00", 7) == 0);
    read_exact(p.peer, body, n);
    CHECK(memcmp(body, mem, n) == 0);
    int64_t end = now_ms() + timeout_ms();
    while (__atomic_load_n(&released_ctx, __ATOMIC_SEQ_CST) == 0 && now_ms() < end) sleep_ms(1);
    CHECK(released_ctx == 1);
    free(mem);
    free(body);
    CHECK_RC(sluice_channel_send_chunk_payload(p.ch, 2, NULL), SLUICE_E_NULL);
    pair_close(&p);
}

/* Close writes what was queued before it, then ends the stream; abort
 * drops the queue. */
static void test_close_flushes_and_abort_drops(void) {
    pair p;
    pair_open(&p, SLUICE_DIALECT_V1, SLUICE_ROLE_WORKER, SLUICE_PROFILE_COMPAT, NULL);
    const char *conn[] = {"connect"};
    rec_expect_from(&p.r, 0, conn, 1);
    for (int i = 0; i < 100; i++) CHECK_OK(sluice_channel_send_chunk(p.ch, 2, B("pong")));
    CHECK_OK(sluice_channel_close(p.ch));
    for (int i = 0; i < 100; i++) expect_bytes(p.peer, "93020091a4706f6e67", "chunk queued before close");
    uint8_t b;
    CHECK(wait_readable(p.peer, timeout_ms()) && recv(p.peer, &b, 1, 0) == 0);
    CHECK_OK(sluice_channel_close(p.ch)); /* idempotent */
    CHECK_OK(sluice_channel_abort(p.ch));
    sluice_channel_free(p.ch);
    rec_wait_released(&p.r);
    rec_expect_quiet(&p.r, 1, 20);
    rec_destroy(&p.r);
    close(p.peer);
    close(p.listener);

    pair q;
    pair_open(&q, SLUICE_DIALECT_V1, SLUICE_ROLE_WORKER, SLUICE_PROFILE_COMPAT, NULL);
    rec_expect_from(&q.r, 0, conn, 1);
    CHECK_OK(sluice_channel_abort(q.ch));
    CHECK_RC(sluice_channel_send_chunk(q.ch, 2, B("late")), SLUICE_E_CLOSED);
    CHECK(wait_readable(q.peer, timeout_ms()));
    ssize_t k = recv(q.peer, &b, 1, 0);
    CHECK(k <= 0);
    sluice_channel_free(q.ch);
    rec_wait_released(&q.r);
    rec_destroy(&q.r);
    close(q.peer);
    close(q.listener);
}

int main(void) {
    RUN(test_v1_worker_sends);
    RUN(test_v1_modern_profile_sends_bin);
    RUN(test_v1_engine_sends);
    RUN(test_v0_worker_sends);
    RUN(test_v0_engine_sends);
    RUN(test_generic_and_raw_sends);
    RUN(test_payload_sends);
    RUN(test_close_flushes_and_abort_drops);
    return 0;
}
