/*
 * Every message type of both dialects arrives in order, with the right
 * arguments, whatever the split of the peer's bytes.
 *
 * A raw peer (plain POSIX sockets) writes byte strings taken from the
 * protocol vectors (core/tests/vectors.json; the name of each is given)
 * cut at random points, and the sluice channel's callbacks are recorded as
 * text lines:
 *   - engine -> worker: a sluice worker channel connects to a raw TCP
 *     listener;
 *   - worker -> engine: a raw client connects to a sluice Server (TCP for
 *     v1, Unix for v0), whose accepted engine channel records.
 */
#include "harness.h"

typedef struct {
    const char *hex;
    const char *events[3];
} step;

/* v1, engine -> worker (worker role). */
static const step V1_TO_WORKER[] = {
    /* v1_heartbeat_reply_runtime_headers */
    {"9401009093cf0000000000000050cf0000000000000051cf0000000000000052", {"heartbeat"}},
    /* v1_invoke_runtime_headers */
    {"94020091a46874747093cf0000000000000050cf0000000000000051cf0000000000000052", {"invoke 2 \"http\""}},
    /* v1_write_engine_to_worker (its write frame) */
    {"93020091da003395a3474554a92f6563686f3f783d31a3312e319292a4486f7374ab6578616d706c652e6f726792a6416363657074a32a2f2aa0",
     {"chunk 2 hex:95a3474554a92f6563686f3f783d31a3312e319292a4486f7374ab6578616d706c652e6f726792a6416363657074a32a2f2aa0"}},
    /* v1_close_engine_to_worker (its close frame) */
    {"93020290", {"choke 2"}},
    /* v1_error_engine_to_worker, on channel 3 */
    {"93030091a470696e67 9303019292d09c64a8746573745f657272", {"invoke 3 \"ping\"", "error 3 [-100 100] \"test_err\""}},
    /* v1_write_worker_bin's frame from the engine side: a bin payload */
    {"93040091a470696e67 93040091c40800ff62696e617279", {"invoke 4 \"ping\"", "chunk 4 hex:00ff62696e617279"}},
    /* v1_write_on_forgotten_channel: dropped by the protocol, reaches on_frame */
    {"93030091a46c617465", {"frame 3 0 91a46c617465"}},
    /* v1_control_unknown_type */
    {"93010790", {"frame 1 7 90"}},
    /* v1_channel_u16 */
    {"93cdffff0091a470696e67 93cdffff0091a178", {"invoke 65535 \"ping\"", "chunk 65535 \"x\""}},
    /* v1_terminate_engine */
    {"930101920cad736c6176652069732069646c65", {"terminate 1 12 \"slave is idle\""}},
    {NULL, {NULL}},
};

/* v0, engine -> worker (worker role). */
static const step V0_TO_WORKER[] = {
    /* v0_heartbeat_reply */
    {"93010090", {"heartbeat"}},
    /* v0_invoke */
    {"93030191a468747470", {"invoke 1 \"http\""}},
    /* v0_chunk_engine_to_worker */
    {"93040191da003395a3474554a92f6563686f3f783d31a3312e319292a4486f7374ab6578616d706c652e6f726792a6416363657074a32a2f2aa0",
     {"chunk 1 hex:95a3474554a92f6563686f3f783d31a3312e319292a4486f7374ab6578616d706c652e6f726792a6416363657074a32a2f2aa0"}},
    /* v0_choke (session 1) */
    {"93060190", {"choke 1"}},
    /* v0_choke_engine_to_worker */
    {"93030291a470696e67 93040291a4626f6479 93060290", {"invoke 2 \"ping\"", "chunk 2 \"body\"", "choke 2"}},
    /* v0_error_worker_no_handler, on session 2 */
    {"93050292cd019ada00206e6f206576656e742068616e646c657220666f72206576656e742022666f6f22",
     {"error 2 410 \"no event handler for event \"foo\"\""}},
    /* v0_session_u64_max */
    {"9304cfffffffffffffffff91a178", {"chunk 18446744073709551615 \"x\""}},
    /* an unknown v0 type id: dropped by the protocol, reaches on_frame */
    {"93070190", {"frame 1 7 90"}},
    /* v0_type_id_noncanonical_uint8 */
    {"93cc010090", {"heartbeat"}},
    /* v0_terminate_engine_normal */
    {"9302009201bb74686520656e67696e65206973207368757474696e6720646f776e", {"terminate 0 1 \"the engine is shutting down\""}},
    {NULL, {NULL}},
};

#define UUID "\"6d0b4c1e-3f5a-4c8e-9a52-2b7f0e9d1c33\""

/* v1, worker -> engine (engine role), before the engine invokes 2 and 3. */
static const step V1_TO_ENGINE_HELLO[] = {
    /* v1_handshake */
    {"93010091da002436643062346331652d336635612d346338652d396135322d326237663065396431633333", {"handshake " UUID}},
    /* v1_heartbeat */
    {"93010090", {"heartbeat"}},
    {NULL, {NULL}},
};

/* ... and after. */
static const step V1_TO_ENGINE[] = {
    /* v1_write_worker_str */
    {"93020091a141", {"chunk 2 \"A\""}},
    /* v1_write_worker_bin */
    {"93020091c40800ff62696e617279", {"chunk 2 hex:00ff62696e617279"}},
    /* v1_write_worker_raw_compat */
    {"93020091a800ff62696e617279", {"chunk 2 hex:00ff62696e617279"}},
    /* v1_close_worker */
    {"93020290", {"choke 2"}},
    /* v1_error_worker_no_handler, on channel 3 */
    {"93030192922accc8da00217468657265206973206e6f2068616e646c657220666f72206576656e7420666f6f",
     {"error 3 [42 200] \"there is no handler for event foo\""}},
    /* a write on channel 2 after its close: dropped, reaches on_frame */
    {"93020091a141", {"frame 2 0 91a141"}},
    /* v1_terminate_worker */
    {"9301019201b073656c662d7465726d696e6174696e67", {"terminate 1 1 \"self-terminating\""}},
    {NULL, {NULL}},
};

/* v0, worker -> engine (engine role). */
static const step V0_TO_ENGINE[] = {
    /* v0_handshake */
    {"93000091da002436643062346331652d336635612d346338652d396135322d326237663065396431633333", {"handshake " UUID}},
    /* v0_heartbeat */
    {"93010090", {"heartbeat"}},
    /* v0_chunk_binary_raw */
    {"93040191aa9301ff0062696e617279", {"chunk 1 hex:9301ff0062696e617279"}},
    /* v0_chunk_raw16 */
    {"93040191da002878787878787878787878787878787878787878787878787878787878787878787878787878787878",
     {"chunk 1 \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\""}},
    /* v0_error_worker_no_handler */
    {"93050192cd019ada00206e6f206576656e742068616e646c657220666f72206576656e742022666f6f22",
     {"error 1 410 \"no event handler for event \"foo\"\""}},
    /* v0_choke */
    {"93060190", {"choke 1"}},
    /* v0_terminate_worker_abnormal */
    {"9302009202be756e61626c6520746f206c6f616420746865206170706c69636174696f6e", {"terminate 0 2 \"unable to load the application\""}},
    {NULL, {NULL}},
};

typedef struct {
    uint8_t bytes[4096];
    size_t len;
    const char *events[64];
    int n;
} script;

static void script_build(script *s, const step *steps) {
    s->len = 0;
    s->n = 0;
    for (const step *st = steps; st->hex; st++) {
        s->len += hex_decode(st->hex, s->bytes + s->len, sizeof s->bytes - s->len);
        for (int i = 0; i < 3 && st->events[i]; i++) s->events[s->n++] = st->events[i];
    }
}

static int rounds(void) { return under_valgrind() ? 3 : 12; }

/* round 0: one byte per write; then random pieces of up to 1..40 bytes. */
static size_t piece_max(int round, uint32_t *seed) { return round == 0 ? 1 : 2 + rnd(seed) % 39; }

static void to_worker(int dialect, const step *steps) {
    script s;
    script_build(&s, steps);
    uint32_t seed = 0x9e3779b9u + (uint32_t)dialect;
    for (int round = 0; round < rounds(); round++) {
        uint16_t port;
        int l = tcp_listen(&port, 8);
        char ep[64];
        snprintf(ep, sizeof ep, "127.0.0.1:%u", port);
        sluice_options *o = opts_make(dialect, SLUICE_ROLE_WORKER);
        rec r;
        rec_init(&r);
        sluice_channel *ch = NULL;
        CHECK_OK(sluice_channel_connect(ep, o, &REC_CALLBACKS, &r, &ch));
        sluice_options_free(o);
        int peer = tcp_accept(l);
        const char *first[] = {"connect"};
        rec_expect_from(&r, 0, first, 1);
        write_split(peer, s.bytes, s.len, &seed, piece_max(round, &seed));
        rec_expect_from(&r, 1, s.events, s.n);
        close(peer);
        char end[32];
        snprintf(end, sizeof end, "socket_error %d", SLUICE_ESHUTDOWN);
        const char *last[] = {end};
        rec_expect_from(&r, 1 + s.n, last, 1);
        rec_expect_quiet(&r, 2 + s.n, 20);
        CHECK(r.ch == ch && !r.handle_mismatch);
        sluice_channel_free(ch);
        rec_wait_released(&r);
        rec_destroy(&r);
        close(l);
    }
}

static void test_v1_engine_to_worker_any_split(void) { to_worker(SLUICE_DIALECT_V1, V1_TO_WORKER); }

static void test_v0_engine_to_worker_any_split(void) { to_worker(SLUICE_DIALECT_V0, V0_TO_WORKER); }

/* A raw worker talks to a sluice Server whose engine channel records. */
static void to_engine(int dialect, const char *endpoint) {
    script hello, rest;
    script_build(&hello, dialect == SLUICE_DIALECT_V1 ? V1_TO_ENGINE_HELLO : V0_TO_ENGINE);
    script_build(&rest, dialect == SLUICE_DIALECT_V1 ? V1_TO_ENGINE : V0_TO_ENGINE);
    if (dialect == SLUICE_DIALECT_V0) rest.n = 0, rest.len = 0; /* v0 needs no invokes: one script */
    uint32_t seed = 0x2545f491u + (uint32_t)dialect;
    sluice_options *o = opts_make(dialect, SLUICE_ROLE_ENGINE);
    int nrounds = rounds();
    rec *recs = calloc((size_t)nrounds, sizeof(rec));
    acceptor a;
    acceptor_init(&a, recs, nrounds);
    for (int i = 0; i < nrounds; i++) rec_init(&recs[i]);
    sluice_server *srv = NULL;
    CHECK_OK(sluice_server_bind(endpoint, o, &ACCEPT_CALLBACKS, &a, &srv));
    sluice_options_free(o);
    for (int round = 0; round < nrounds; round++) {
        rec *r = &recs[round];
        int peer = dialect == SLUICE_DIALECT_V1 ? tcp_connect_port(server_port(srv)) : unix_connect(endpoint + 5);
        sluice_channel *ch = acceptor_wait(&a, round);
        CHECK_RC(a.start_twice_rc, SLUICE_E_STATE);
        const char *first[] = {"connect"};
        rec_expect_from(r, 0, first, 1);
        write_split(peer, hello.bytes, hello.len, &seed, piece_max(round, &seed));
        rec_expect_from(r, 1, hello.events, hello.n);
        int done = 1 + hello.n;
        if (rest.len > 0) {
            /* The engine opens channels 2 and 3; the worker then answers on them. */
            uint64_t s2, s3;
            CHECK_OK(sluice_channel_next_session(ch, &s2));
            CHECK(s2 == 2);
            CHECK_OK(sluice_channel_send_invoke(ch, s2, (const uint8_t *)"http", 4));
            CHECK_OK(sluice_channel_next_session(ch, &s3));
            CHECK(s3 == 3);
            CHECK_OK(sluice_channel_send_invoke(ch, s3, (const uint8_t *)"ping", 4));
            expect_bytes(peer, "93020091a468747470 93030091a470696e67", "the engine's invokes");
            write_split(peer, rest.bytes, rest.len, &seed, piece_max(round, &seed));
            rec_expect_from(r, done, rest.events, rest.n);
            done += rest.n;
        }
        close(peer);
        char end[32];
        snprintf(end, sizeof end, "socket_error %d", SLUICE_ESHUTDOWN);
        const char *last[] = {end};
        rec_expect_from(r, done, last, 1);
        rec_expect_quiet(r, done + 1, 20);
        CHECK(r->ch == ch && !r->handle_mismatch);
        sluice_channel_free(ch);
        rec_wait_released(r);
    }
    sluice_server_free(srv);
    acceptor_wait_released(&a);
    for (int i = 0; i < nrounds; i++) rec_destroy(&recs[i]);
    free(recs);
    acceptor_destroy(&a);
}

static void test_v1_worker_to_engine_any_split(void) { to_engine(SLUICE_DIALECT_V1, "127.0.0.1:0"); }

static void test_v0_worker_to_engine_any_split(void) {
    char path[200], ep[220];
    tmp_sock_path(path, sizeof path, "v0engine");
    snprintf(ep, sizeof ep, "unix:%s", path);
    to_engine(SLUICE_DIALECT_V0, ep);
    CHECK(access(path, F_OK) != 0); /* the server removed its socket file */
}

/* A 1 MiB chunk (v1_write_1MiB_bin's shape) written in odd pieces arrives
 * whole, as one callback with the exact bytes. */
static void test_large_chunk_any_split(void) {
    uint16_t port;
    int l = tcp_listen(&port, 8);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%u", port);
    rec r;
    rec_init(&r);
    sluice_channel *ch = NULL;
    CHECK_OK(sluice_channel_connect(ep, NULL, &REC_CALLBACKS, &r, &ch));
    int peer = tcp_accept(l);
    size_t n = 1u << 20;
    uint8_t *frame = malloc(n + 32);
    size_t h = hex_decode("93020091a470696e67 93020091c6 00100000", frame, 32);
    for (size_t i = 0; i < n; i++) frame[h + i] = (uint8_t)(i * 7);
    uint32_t seed = 7;
    write_split(peer, frame, h + n, &seed, 65521);
    const char *want[] = {"connect", "invoke 2 \"ping\"", "chunk 2 len=1048576"};
    rec_expect_from(&r, 0, want, 3);
    CHECK(r.kept != NULL && sluice_payload_len(r.kept) == n);
    CHECK(memcmp(sluice_payload_data(r.kept), frame + h, n) == 0);
    free(frame);
    close(peer);
    close(l);
    sluice_channel_free(ch);
    rec_wait_released(&r);
    rec_destroy(&r);
}

int main(void) {
    RUN(test_v1_engine_to_worker_any_split);
    RUN(test_v0_engine_to_worker_any_split);
    RUN(test_v1_worker_to_engine_any_split);
    RUN(test_v0_worker_to_engine_any_split);
    RUN(test_large_chunk_any_split);
    return 0;
}
