/* The native ZeroMQ contender of `make bench`: libzmq from C, without
 * Python in the way, on the streaming and round-trip workloads.
 *
 *   zmq-native WORKLOAD NET COUNT     WORKLOAD: recv64 recv64k send64 rtt64; NET: tcp unix
 *
 * prints JSON samples like the other contenders (contender "zmq-c").
 * PUSH/PULL for the streaming workloads (each message is the bare payload:
 * ZeroMQ frames it itself), REQ/REP for round trips; the other side runs in
 * a second thread of this process ("unix" is ZeroMQ's ipc:// transport).
 *
 * It is built against the libzmq that pyzmq bundles (mk/bench.mk), which
 * ships no header: the few functions used are declared here, as in zmq.h. */

#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* From zmq.h (libzmq 4.x; stable ABI). */
typedef struct zmq_msg_t {
    _Alignas(8) unsigned char _[64];
} zmq_msg_t;
void *zmq_ctx_new(void);
int zmq_ctx_term(void *ctx);
void *zmq_socket(void *ctx, int type);
int zmq_close(void *s);
int zmq_bind(void *s, const char *addr);
int zmq_connect(void *s, const char *addr);
int zmq_setsockopt(void *s, int opt, const void *val, size_t len);
int zmq_getsockopt(void *s, int opt, void *val, size_t *len);
int zmq_send(void *s, const void *buf, size_t len, int flags);
int zmq_recv(void *s, void *buf, size_t len, int flags);
int zmq_msg_init(zmq_msg_t *msg);
int zmq_msg_recv(zmq_msg_t *msg, void *s, int flags);
int zmq_msg_send(zmq_msg_t *msg, void *s, int flags);
int zmq_msg_close(zmq_msg_t *msg);
size_t zmq_msg_size(const zmq_msg_t *msg);
int zmq_errno(void);
const char *zmq_strerror(int errnum);
void zmq_version(int *major, int *minor, int *patch);
#define ZMQ_REQ 3
#define ZMQ_REP 4
#define ZMQ_PULL 7
#define ZMQ_PUSH 8
#define ZMQ_LINGER 17
#define ZMQ_LAST_ENDPOINT 32

#define RTT_WARMUP 200

static void *ctx;
static char endpoint[256];

static void check(int rc, const char *what) {
    if (rc < 0) {
        fprintf(stderr, "zmq-native: %s: %s\n", what, zmq_strerror(zmq_errno()));
        exit(1);
    }
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Binds `s` on loopback or an ipc path and keeps the resolved endpoint. */
static void bind_any(void *s, const char *net) {
    char want[256];
    if (strcmp(net, "tcp") == 0)
        snprintf(want, sizeof want, "tcp://127.0.0.1:*");
    else
        snprintf(want, sizeof want, "ipc:///tmp/sluice-bench-%d-zmq.sock", (int)getpid());
    check(zmq_bind(s, want), "bind");
    size_t len = sizeof endpoint;
    check(zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, endpoint, &len), "endpoint");
}

struct job {
    long n;
    size_t size;
};

static void *pusher(void *arg) {
    struct job *j = arg;
    void *s = zmq_socket(ctx, ZMQ_PUSH);
    check(zmq_connect(s, endpoint), "connect");
    char *payload = malloc(j->size);
    memset(payload, 0x5a, j->size);
    for (long i = 0; i < j->n; i++)
        check(zmq_send(s, payload, j->size, 0), "send");
    free(payload);
    zmq_close(s); /* linger: everything is delivered first */
    return NULL;
}

static void *puller(void *arg) {
    struct job *j = arg;
    void *s = zmq_socket(ctx, ZMQ_PULL);
    check(zmq_connect(s, endpoint), "connect");
    zmq_msg_t m;
    zmq_msg_init(&m);
    for (long i = 0; i < j->n; i++)
        check(zmq_msg_recv(&m, s, 0), "recv");
    zmq_msg_close(&m);
    zmq_close(s);
    return NULL;
}

static void *echo(void *arg) {
    (void)arg;
    void *s = zmq_socket(ctx, ZMQ_REP);
    check(zmq_connect(s, endpoint), "connect");
    zmq_msg_t m;
    zmq_msg_init(&m);
    for (;;) {
        check(zmq_msg_recv(&m, s, 0), "recv");
        size_t len = zmq_msg_size(&m);
        check(zmq_msg_send(&m, s, 0), "send");
        if (len == 0)
            break;
    }
    zmq_msg_close(&m);
    zmq_close(s);
    return NULL;
}

/* Seconds for n messages reaching a PULL socket from a PUSH thread; the
 * first message starts the clock. */
static double recv_run(const char *net, long n, size_t size) {
    void *s = zmq_socket(ctx, ZMQ_PULL);
    bind_any(s, net);
    struct job j = {n, size};
    pthread_t t;
    pthread_create(&t, NULL, pusher, &j);
    zmq_msg_t m;
    zmq_msg_init(&m);
    check(zmq_msg_recv(&m, s, 0), "recv");
    double t0 = now();
    for (long i = 1; i < n; i++)
        check(zmq_msg_recv(&m, s, 0), "recv");
    double dt = now() - t0;
    zmq_msg_close(&m);
    pthread_join(t, NULL);
    zmq_close(s);
    return dt * (double)n / (double)(n - 1);
}

/* Seconds for n messages sent on a PUSH socket until a PULL thread has them all. */
static double send_run(const char *net, long n) {
    void *s = zmq_socket(ctx, ZMQ_PUSH);
    bind_any(s, net);
    struct job j = {n, 64};
    pthread_t t;
    pthread_create(&t, NULL, puller, &j);
    char payload[64];
    memset(payload, 0x5a, sizeof payload);
    /* The first message waits for the puller to connect: the clock starts after it. */
    check(zmq_send(s, payload, sizeof payload, 0), "send");
    double t0 = now();
    for (long i = 1; i < n; i++)
        check(zmq_send(s, payload, sizeof payload, 0), "send");
    pthread_join(t, NULL);
    double dt = now() - t0;
    zmq_close(s);
    return dt * (double)n / (double)(n - 1);
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void rtt_run(const char *net, long n, double *p50, double *p99, double *total) {
    void *s = zmq_socket(ctx, ZMQ_REQ);
    bind_any(s, net);
    pthread_t t;
    pthread_create(&t, NULL, echo, NULL);
    double *lat = malloc(sizeof(double) * (size_t)n);
    char payload[64], buf[64];
    memset(payload, 0x5a, sizeof payload);
    *total = 0;
    for (long i = 0; i < n + RTT_WARMUP; i++) {
        double t0 = now();
        check(zmq_send(s, payload, sizeof payload, 0), "send");
        check(zmq_recv(s, buf, sizeof buf, 0), "recv");
        double dt = now() - t0;
        if (i >= RTT_WARMUP) {
            lat[i - RTT_WARMUP] = dt * 1e6;
            *total += dt;
        }
    }
    check(zmq_send(s, "", 0, 0), "send");
    check(zmq_recv(s, buf, sizeof buf, 0), "recv");
    pthread_join(t, NULL);
    zmq_close(s);
    qsort(lat, (size_t)n, sizeof(double), cmp);
    *p50 = lat[(size_t)((double)(n - 1) * 0.5)];
    *p99 = lat[(size_t)((double)(n - 1) * 0.99)];
    free(lat);
}

static void sample(const char *w, const char *net, const char *metric, double value, long count, double secs) {
    printf("{\"contender\":\"zmq-c\",\"workload\":\"%s\",\"net\":\"%s\",\"metric\":\"%s\",\"value\":%.6f,"
           "\"count\":%ld,\"seconds\":%.6f}\n",
           w, net, metric, value, count, secs);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        int a, b, c;
        zmq_version(&a, &b, &c);
        printf("libzmq %d.%d.%d\n", a, b, c);
        return 0;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: zmq-native recv64|recv64k|send64|rtt64 tcp|unix COUNT\n");
        return 2;
    }
    const char *w = argv[1], *net = argv[2];
    long n = atol(argv[3]);
    if (n < 2 || (strcmp(net, "tcp") != 0 && strcmp(net, "unix") != 0)) {
        fprintf(stderr, "zmq-native: bad arguments\n");
        return 2;
    }
    ctx = zmq_ctx_new();
    if (strcmp(w, "recv64") == 0) {
        double s = recv_run(net, n, 64);
        sample(w, net, "msgs_per_s", (double)n / s, n, s);
    } else if (strcmp(w, "recv64k") == 0) {
        double s = recv_run(net, n, 65536);
        sample(w, net, "gb_per_s", (double)n * 65536.0 / s / 1e9, n, s);
    } else if (strcmp(w, "send64") == 0) {
        double s = send_run(net, n);
        sample(w, net, "msgs_per_s", (double)n / s, n, s);
    } else if (strcmp(w, "rtt64") == 0) {
        double p50, p99, total;
        rtt_run(net, n, &p50, &p99, &total);
        sample(w, net, "p50_us", p50, n, total);
        sample(w, net, "p99_us", p99, n, total);
    } else {
        fprintf(stderr, "zmq-native: unknown workload %s\n", w);
        return 2;
    }
    zmq_ctx_term(ctx);
    if (strcmp(net, "unix") == 0) {
        char path[128];
        snprintf(path, sizeof path, "/tmp/sluice-bench-%d-zmq.sock", (int)getpid());
        unlink(path);
    }
    return 0;
}
