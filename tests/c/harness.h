/*
 * A small harness for the C tests of libsluice: checks, an event recorder
 * that turns every callback into a line of text, and raw POSIX socket
 * peers that write or read exact bytes.
 *
 * Everything is static so each test program is one translation unit.
 */
#ifndef SLUICE_TEST_HARNESS_H
#define SLUICE_TEST_HARNESS_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sluice.h>

/* Not every program uses every helper. */
#define HELPER static __attribute__((unused))

/* ------------------------------------------------------------------------ */
/* Checks: a failure prints where and why, then ends the program.           */

HELPER const char *current_test = "(setup)";

#define FAILF(...)                                                                  \
    do {                                                                            \
        fprintf(stderr, "FAIL %s at %s:%d: ", current_test, __FILE__, __LINE__);   \
        fprintf(stderr, __VA_ARGS__);                                               \
        fprintf(stderr, "\n");                                                      \
        exit(1);                                                                    \
    } while (0)

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) FAILF("%s", #cond);                                            \
    } while (0)

#define CHECK_RC(expr, want)                                                        \
    do {                                                                            \
        int rc_ = (expr);                                                           \
        if (rc_ != (want)) {                                                        \
            const char *n_ = sluice_result_name(rc_);                               \
            FAILF("%s returned %d (%s), want %s; last error: %s", #expr, rc_,      \
                  n_ ? n_ : "?", #want, sluice_last_error());                       \
        }                                                                           \
    } while (0)

#define CHECK_OK(expr) CHECK_RC(expr, SLUICE_OK)

#define RUN(fn)                                                                     \
    do {                                                                            \
        current_test = #fn;                                                         \
        fn();                                                                       \
        printf("ok - %s\n", #fn);                                                   \
        fflush(stdout);                                                             \
    } while (0)

/* Under valgrind everything is ~30x slower: run.sh raises the timeout. */
HELPER int timeout_ms(void) {
    const char *t = getenv("SLUICE_TEST_TIMEOUT_MS");
    return t ? atoi(t) : 10000;
}

HELPER int under_valgrind(void) {
    const char *v = getenv("SLUICE_TEST_VALGRIND");
    return v && *v && strcmp(v, "0") != 0;
}

HELPER int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

HELPER void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

HELPER struct timespec deadline_after(int ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* ------------------------------------------------------------------------ */
/* Hex.                                                                      */

HELPER size_t hex_decode(const char *hex, uint8_t *out, size_t cap) {
    size_t n = 0;
    for (const char *p = hex; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        unsigned v;
        if (sscanf(p, "%2x", &v) != 1) FAILF("bad hex near %s", p);
        if (n == cap) FAILF("hex longer than %zu bytes", cap);
        out[n++] = (uint8_t)v;
        p += 2;
    }
    return n;
}

HELPER void hex_encode(const uint8_t *b, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", b[i]);
    out[2 * n] = 0;
}

/* Bytes as a readable token: text if printable, else hex:..., long ones by length. */
HELPER void show_bytes(const uint8_t *b, size_t n, char *out, size_t cap) {
    if (b == NULL) {
        snprintf(out, cap, "(none)");
        return;
    }
    if (n > 64) {
        snprintf(out, cap, "len=%zu", n);
        return;
    }
    int printable = 1;
    for (size_t i = 0; i < n; i++)
        if (b[i] < 0x20 || b[i] > 0x7e) printable = 0;
    if (printable) {
        snprintf(out, cap, "\"%.*s\"", (int)n, (const char *)b);
    } else {
        char hex[130];
        hex_encode(b, n, hex);
        snprintf(out, cap, "hex:%s", hex);
    }
}

/* ------------------------------------------------------------------------ */
/* The recorder: every callback of a channel becomes one line.              */

#define REC_MAX 4096

typedef struct rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *lines[REC_MAX];
    int n;
    int released;     /* on_release calls */
    int socket_errors;
    int last_errno;
    int drains;
    sluice_channel *ch; /* the handle the callbacks saw */
    int handle_mismatch;
    pthread_t thread;   /* the thread of the last callback */
    /* Optional behaviour hooks. */
    int free_on_connect;
    int free_on_socket_error;
    int close_on_connect;
    int dispatch_rc; /* rc of a dispatch tried from inside on_connect, -1 if not tried */
    int try_dispatch;
    int echo;         /* send every chunk (forwarded payload) and choke back */
    int free_on_chunk;
    int chunk_bytes;  /* total chunk bytes, for big streams */
    sluice_payload *kept; /* first chunk payload, retained */
} rec;

HELPER void rec_init(rec *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->dispatch_rc = -1;
}

HELPER void rec_destroy(rec *r) {
    for (int i = 0; i < r->n; i++) free(r->lines[i]);
    sluice_payload_free(r->kept);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

HELPER void rec_add(rec *r, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&r->mu);
    if (r->n < REC_MAX) r->lines[r->n++] = strdup(buf);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

HELPER void rec_dump(rec *r) {
    for (int i = 0; i < r->n; i++) fprintf(stderr, "    [%d] %s\n", i, r->lines[i]);
}

/* Waits until `n` lines are recorded; fails after the timeout. */
HELPER void rec_wait_lines(rec *r, int n) {
    struct timespec dl = deadline_after(timeout_ms());
    pthread_mutex_lock(&r->mu);
    while (r->n < n) {
        if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) == ETIMEDOUT) {
            pthread_mutex_unlock(&r->mu);
            fprintf(stderr, "  recorded so far:\n");
            rec_dump(r);
            FAILF("waited for %d events, got %d", n, r->n);
        }
    }
    pthread_mutex_unlock(&r->mu);
}

/* Waits until an int field reaches `want`. */
HELPER void rec_wait_int(rec *r, int *field, int want, const char *what) {
    struct timespec dl = deadline_after(timeout_ms());
    pthread_mutex_lock(&r->mu);
    while (*field < want) {
        if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) == ETIMEDOUT) {
            int got = *field;
            pthread_mutex_unlock(&r->mu);
            rec_dump(r);
            FAILF("waited for %s >= %d, got %d", what, want, got);
        }
    }
    pthread_mutex_unlock(&r->mu);
}

/* Waits for the expected lines (starting at line `from`) and compares. */
HELPER void rec_expect_from(rec *r, int from, const char *const *want, int n) {
    rec_wait_lines(r, from + n);
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < n; i++) {
        if (strcmp(r->lines[from + i], want[i]) != 0) {
            fprintf(stderr, "  line %d: got  %s\n          want %s\n", from + i, r->lines[from + i], want[i]);
            rec_dump(r);
            pthread_mutex_unlock(&r->mu);
            FAILF("unexpected event");
        }
    }
    pthread_mutex_unlock(&r->mu);
}

/* Fails if more than `n` lines arrive within `ms`. */
HELPER void rec_expect_quiet(rec *r, int n, int ms) {
    sleep_ms(ms);
    pthread_mutex_lock(&r->mu);
    int got = r->n;
    pthread_mutex_unlock(&r->mu);
    if (got != n) {
        rec_dump(r);
        FAILF("expected %d events and then nothing, got %d", n, got);
    }
}

HELPER void rec_seen(rec *r, sluice_channel *ch) {
    pthread_mutex_lock(&r->mu);
    if (r->ch == NULL) r->ch = ch;
    else if (r->ch != ch) r->handle_mismatch = 1;
    r->thread = pthread_self();
    pthread_mutex_unlock(&r->mu);
}

HELPER void cb_connect(void *ud, sluice_channel *ch) {
    rec *r = ud;
    rec_seen(r, ch);
    if (r->try_dispatch) r->dispatch_rc = sluice_channel_dispatch(ch, SIZE_MAX, NULL);
    rec_add(r, "connect");
    if (r->close_on_connect) sluice_channel_close(ch);
    if (r->free_on_connect) sluice_channel_free(ch);
}

HELPER void cb_socket_error(void *ud, sluice_channel *ch, int err) {
    rec *r = ud;
    rec_seen(r, ch);
    pthread_mutex_lock(&r->mu);
    r->socket_errors++;
    r->last_errno = err;
    pthread_mutex_unlock(&r->mu);
    rec_add(r, "socket_error %d", err);
    if (r->free_on_socket_error) sluice_channel_free(ch);
}

HELPER void cb_handshake(void *ud, sluice_channel *ch, const uint8_t *uuid, size_t len) {
    char s[200];
    rec_seen(ud, ch);
    show_bytes(uuid, len, s, sizeof s);
    rec_add(ud, "handshake %s", s);
}

HELPER void cb_heartbeat(void *ud, sluice_channel *ch) {
    rec_seen(ud, ch);
    rec_add(ud, "heartbeat");
}

HELPER void cb_terminate(void *ud, sluice_channel *ch, uint64_t session, int64_t code, const uint8_t *reason, size_t len) {
    char s[200];
    rec_seen(ud, ch);
    show_bytes(reason, len, s, sizeof s);
    rec_add(ud, "terminate %llu %lld %s", (unsigned long long)session, (long long)code, s);
}

HELPER void cb_invoke(void *ud, sluice_channel *ch, uint64_t session, const uint8_t *event, size_t len) {
    char s[200];
    rec_seen(ud, ch);
    show_bytes(event, len, s, sizeof s);
    rec_add(ud, "invoke %llu %s", (unsigned long long)session, s);
}

HELPER void cb_chunk(void *ud, sluice_channel *ch, uint64_t session, const uint8_t *data, size_t len, const sluice_payload *p) {
    rec *r = ud;
    char s[200];
    rec_seen(r, ch);
    if (sluice_payload_data(p) != data || sluice_payload_len(p) != len) r->handle_mismatch = 1;
    if (r->kept == NULL) r->kept = sluice_payload_retain(p);
    show_bytes(data, len, s, sizeof s);
    pthread_mutex_lock(&r->mu);
    r->chunk_bytes += (int)len;
    pthread_mutex_unlock(&r->mu);
    rec_add(r, "chunk %llu %s", (unsigned long long)session, s);
    if (r->echo) CHECK_OK(sluice_channel_send_chunk_payload(ch, session, p));
    if (r->free_on_chunk) sluice_channel_free(ch);
}

HELPER void cb_choke(void *ud, sluice_channel *ch, uint64_t session) {
    rec *r = ud;
    rec_seen(r, ch);
    rec_add(r, "choke %llu", (unsigned long long)session);
    if (r->echo) CHECK_OK(sluice_channel_send_choke(ch, session));
}

HELPER void cb_error(void *ud, sluice_channel *ch, uint64_t session, int has_category, int64_t category, int64_t code,
                     const uint8_t *msg, size_t len) {
    char s[200];
    rec_seen(ud, ch);
    show_bytes(msg, len, s, sizeof s);
    if (has_category)
        rec_add(ud, "error %llu [%lld %lld] %s", (unsigned long long)session, (long long)category, (long long)code, s);
    else
        rec_add(ud, "error %llu %lld %s", (unsigned long long)session, (long long)code, s);
}

HELPER void cb_frame(void *ud, sluice_channel *ch, uint64_t session, uint64_t type_id, const uint8_t *args, size_t len) {
    char hex[2 * 256 + 1];
    rec_seen(ud, ch);
    if (len > 256) len = 256;
    hex_encode(args, len, hex);
    rec_add(ud, "frame %llu %llu %s", (unsigned long long)session, (unsigned long long)type_id, hex);
}

HELPER void cb_drain(void *ud, sluice_channel *ch) {
    rec *r = ud;
    rec_seen(r, ch);
    pthread_mutex_lock(&r->mu);
    r->drains++;
    pthread_mutex_unlock(&r->mu);
    rec_add(r, "drain");
}

HELPER void cb_release(void *ud) {
    rec *r = ud;
    pthread_mutex_lock(&r->mu);
    r->released++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

HELPER const sluice_callbacks REC_CALLBACKS = {
    .on_connect = cb_connect,
    .on_socket_error = cb_socket_error,
    .on_handshake = cb_handshake,
    .on_heartbeat = cb_heartbeat,
    .on_terminate = cb_terminate,
    .on_invoke = cb_invoke,
    .on_chunk = cb_chunk,
    .on_choke = cb_choke,
    .on_error = cb_error,
    .on_frame = cb_frame,
    .on_drain = cb_drain,
    .on_release = cb_release,
};

/* Waits for on_release of a recorder, and checks it came exactly once. */
HELPER void rec_wait_released(rec *r) {
    rec_wait_int(r, &r->released, 1, "on_release calls");
    sleep_ms(20);
    CHECK(r->released == 1);
}

/* ------------------------------------------------------------------------ */
/* Options.                                                                  */

HELPER sluice_options *opts_make(int dialect, int role) {
    sluice_options *o = sluice_options_new();
    CHECK(o != NULL);
    CHECK_OK(sluice_options_set_dialect(o, dialect));
    CHECK_OK(sluice_options_set_role(o, role));
    return o;
}

/* ------------------------------------------------------------------------ */
/* Raw peers over POSIX sockets.                                            */

HELPER int tcp_listen(uint16_t *port, int backlog) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(fd, backlog) == 0);
    socklen_t l = sizeof a;
    CHECK(getsockname(fd, (struct sockaddr *)&a, &l) == 0);
    *port = ntohs(a.sin_port);
    return fd;
}

HELPER int wait_readable(int fd, int ms) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, ms) == 1;
}

HELPER int tcp_accept(int lfd) {
    if (!wait_readable(lfd, timeout_ms())) FAILF("no connection to accept");
    int fd = accept(lfd, NULL, NULL);
    CHECK(fd >= 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

HELPER int tcp_connect_port(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

HELPER int unix_connect(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    CHECK(strlen(path) < sizeof a.sun_path);
    memcpy(a.sun_path, path, strlen(path) + 1);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    return fd;
}

HELPER void write_all(int fd, const uint8_t *b, size_t n) {
    while (n > 0) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) FAILF("write: %s", strerror(errno));
        b += k;
        n -= (size_t)k;
    }
}

HELPER uint32_t rnd(uint32_t *seed) {
    uint32_t x = *seed;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *seed = x;
}

/* Writes `b` in pieces of random size (1..max; all 1 when max is 1), with
 * short pauses so the reader sees the splits. */
HELPER void write_split(int fd, const uint8_t *b, size_t n, uint32_t *seed, size_t max) {
    size_t pos = 0;
    while (pos < n) {
        size_t k = max <= 1 ? 1 : 1 + rnd(seed) % max;
        if (k > n - pos) k = n - pos;
        write_all(fd, b + pos, k);
        pos += k;
        if (rnd(seed) % 4 == 0) usleep(100);
    }
}

/* Reads exactly n bytes or fails after the timeout. */
HELPER void read_exact(int fd, uint8_t *buf, size_t n) {
    size_t got = 0;
    int64_t end = now_ms() + timeout_ms();
    while (got < n) {
        int left = (int)(end - now_ms());
        if (left <= 0 || !wait_readable(fd, left)) FAILF("read: got %zu of %zu bytes", got, n);
        ssize_t k = recv(fd, buf + got, n - got, 0);
        if (k <= 0) FAILF("read: %s after %zu of %zu bytes", k == 0 ? "end of stream" : strerror(errno), got, n);
        got += (size_t)k;
    }
}

/* Reads the bytes `hex` describes and compares them. */
HELPER void expect_bytes(int fd, const char *hex, const char *what) {
    uint8_t want[512], got[512];
    size_t n = hex_decode(hex, want, sizeof want);
    read_exact(fd, got, n);
    if (memcmp(want, got, n) != 0) {
        char g[2 * 512 + 1];
        hex_encode(got, n, g);
        FAILF("%s: wire bytes\n  got  %s\n  want %s", what, g, hex);
    }
}

/* Fails if any byte arrives within `ms`. */
HELPER void expect_no_bytes(int fd, int ms) {
    if (wait_readable(fd, ms)) {
        uint8_t b[64];
        ssize_t k = recv(fd, b, sizeof b, MSG_DONTWAIT);
        if (k > 0) FAILF("unexpected %zd bytes on the wire", k);
    }
}

HELPER void set_linger0(int fd) {
    struct linger l = {1, 0};
    CHECK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) == 0);
}

HELPER void tmp_sock_path(char *out, size_t cap, const char *name) {
    const char *dir = getenv("TMPDIR");
    snprintf(out, cap, "%s/sluice-ctest-%d-%s.sock", dir && *dir ? dir : "/tmp", (int)getpid(), name);
}

/* ------------------------------------------------------------------------ */
/* A sluice server that starts every accepted channel with the recorder     */
/* callbacks of the next free `rec` in an array.                            */

#define ACCEPT_MAX 2048

typedef struct acceptor {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rec *recs;          /* NULL: use `one` for the first, refuse the rest */
    int cap;
    int n;              /* accepted so far */
    sluice_channel *chans[ACCEPT_MAX];
    int released;
    const sluice_callbacks *cbs; /* NULL: REC_CALLBACKS */
    const sluice_options *opts;  /* NULL: the server's */
    int start_twice_rc;
    char peer[128];
} acceptor;

HELPER void acceptor_init(acceptor *a, rec *recs, int cap) {
    memset(a, 0, sizeof *a);
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->recs = recs;
    a->cap = cap;
    a->start_twice_rc = -1;
}

HELPER void on_accept_rec(void *ud, sluice_server *s, sluice_incoming *inc) {
    acceptor *a = ud;
    (void)s;
    pthread_mutex_lock(&a->mu);
    int i = a->n;
    pthread_mutex_unlock(&a->mu);
    if (i >= a->cap || i >= ACCEPT_MAX) return; /* not started: closed */
    sluice_incoming_peer(inc, a->peer, sizeof a->peer, NULL);
    if (a->opts) CHECK_OK(sluice_incoming_set_options(inc, a->opts));
    sluice_channel *ch = NULL;
    CHECK_OK(sluice_incoming_start(inc, a->cbs ? a->cbs : &REC_CALLBACKS, &a->recs[i], &ch));
    sluice_channel *again = NULL;
    a->start_twice_rc = sluice_incoming_start(inc, &REC_CALLBACKS, &a->recs[i], &again);
    if (again != NULL) a->start_twice_rc = -2;
    pthread_mutex_lock(&a->mu);
    a->chans[i] = ch;
    a->n++;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

HELPER void on_accept_release(void *ud) {
    acceptor *a = ud;
    pthread_mutex_lock(&a->mu);
    a->released++;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

HELPER const sluice_server_callbacks ACCEPT_CALLBACKS = {on_accept_rec, on_accept_release};

HELPER sluice_channel *acceptor_wait(acceptor *a, int i) {
    struct timespec dl = deadline_after(timeout_ms());
    pthread_mutex_lock(&a->mu);
    while (a->n <= i) {
        if (pthread_cond_timedwait(&a->cv, &a->mu, &dl) == ETIMEDOUT) {
            pthread_mutex_unlock(&a->mu);
            FAILF("waited for accepted connection %d, have %d", i, a->n);
        }
    }
    sluice_channel *ch = a->chans[i];
    pthread_mutex_unlock(&a->mu);
    return ch;
}

HELPER void acceptor_wait_released(acceptor *a) {
    struct timespec dl = deadline_after(timeout_ms());
    pthread_mutex_lock(&a->mu);
    while (a->released < 1) {
        if (pthread_cond_timedwait(&a->cv, &a->mu, &dl) == ETIMEDOUT) {
            pthread_mutex_unlock(&a->mu);
            FAILF("the server's on_release never came");
        }
    }
    pthread_mutex_unlock(&a->mu);
    sleep_ms(20);
    CHECK(a->released == 1);
}

HELPER void acceptor_destroy(acceptor *a) {
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
}

HELPER uint16_t server_port(sluice_server *s) {
    uint16_t p = 0;
    CHECK_OK(sluice_server_port(s, &p));
    return p;
}

#endif
