/*
 * Soak through the C API: churns connections and sessions through a
 * libsluice server and libsluice workers in this process, sampling RSS and
 * open descriptors once a second at the end of a cycle. Fails if, after
 * the warm-up, RSS drifts by more than the bound or descriptors by more
 * than 4.
 *
 *   soak SECONDS [RSS_BOUND_KIB]
 *
 * Each cycle: 16 workers connect and handshake; the engine invokes 4
 * sessions on each (3 chunks and a choke each), the worker echoes and
 * chokes back, the engine frees its channel from inside on_choke, the
 * worker sees the end and the main thread frees it. Every fourth cycle the
 * engine aborts the connection at the handshake instead and the worker
 * reconnects once.
 */
#define _GNU_SOURCE
#include <sluice.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 16
#define SESSIONS 4
#define CHUNKS 3

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int finished; /* workers whose last connection ended this cycle */
static int live;     /* callback sets not yet released */
static int reset_cycle;
static long connections, sessions, reconnects;
static char endpoint[64];

static void bump(int *v, int d) {
    pthread_mutex_lock(&mu);
    *v += d;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1) break;
    if (f) fclose(f);
    return v;
}

static long open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    long n = 0;
    while (d && readdir(d)) n++;
    if (d) closedir(d);
    return n - 3; /* ".", "..", the directory's own descriptor */
}

/* ---- the engine side ---- */
typedef struct {
    int chokes;
} eng;

static void e_handshake(void *ud, sluice_channel *ch, const uint8_t *uuid, size_t len) {
    (void)ud;
    if (reset_cycle && uuid[len - 1] != '+') {
        sluice_channel_abort(ch);
        return;
    }
    static uint8_t chunk[1024];
    for (int s = 0; s < SESSIONS; s++) {
        uint64_t id;
        sluice_channel_next_session(ch, &id);
        sluice_channel_send_invoke(ch, id, (const uint8_t *)"echo", 4);
        for (int i = 0; i < CHUNKS; i++) sluice_channel_send_chunk(ch, id, chunk, sizeof chunk);
        sluice_channel_send_choke(ch, id);
    }
}

static void e_choke(void *ud, sluice_channel *ch, uint64_t s) {
    (void)s;
    eng *e = ud;
    __atomic_add_fetch(&sessions, 1, __ATOMIC_RELAXED);
    if (++e->chokes == SESSIONS) sluice_channel_close(ch);
}

static void e_release(void *ud) {
    free(ud);
    bump(&live, -1);
}

static void e_socket_error(void *ud, sluice_channel *ch, int err) {
    (void)ud, (void)ch, (void)err; /* the main thread frees the handle */
}

static const sluice_callbacks ENGINE = {
    .on_handshake = e_handshake, .on_choke = e_choke, .on_socket_error = e_socket_error, .on_release = e_release};

static pthread_mutex_t emu = PTHREAD_MUTEX_INITIALIZER;
static sluice_channel *engines[4096];
static int n_engines;

static void on_accept(void *ud, sluice_server *srv, sluice_incoming *inc) {
    (void)ud;
    (void)srv;
    eng *e = calloc(1, sizeof *e);
    sluice_channel *ch = NULL;
    bump(&live, 1);
    if (sluice_incoming_start(inc, &ENGINE, e, &ch) != SLUICE_OK) {
        free(e);
        bump(&live, -1);
        return;
    }
    pthread_mutex_lock(&emu);
    engines[n_engines++] = ch;
    pthread_mutex_unlock(&emu);
}

/* ---- the worker side ---- */
typedef struct {
    int again, invoked;
} wrk;

static sluice_callbacks WORKER;
static pthread_mutex_t wmu = PTHREAD_MUTEX_INITIALIZER;
static sluice_channel *workers[4096];
static int n_workers;

static void start_worker(int again) {
    wrk *w = calloc(1, sizeof *w);
    w->again = again;
    sluice_channel *ch = NULL;
    bump(&live, 1);
    if (sluice_channel_connect(endpoint, NULL, &WORKER, w, &ch) != SLUICE_OK) {
        fprintf(stderr, "connect: %s\n", sluice_last_error());
        exit(1);
    }
    pthread_mutex_lock(&wmu);
    workers[n_workers++] = ch;
    pthread_mutex_unlock(&wmu);
}

static void w_connect(void *ud, sluice_channel *ch) {
    wrk *w = ud;
    __atomic_add_fetch(&connections, 1, __ATOMIC_RELAXED);
    sluice_channel_send_handshake(ch, (const uint8_t *)(w->again ? "soak+" : "soak"), w->again ? 5 : 4);
}
static void w_invoke(void *ud, sluice_channel *ch, uint64_t s, const uint8_t *ev, size_t len) {
    (void)ch, (void)s, (void)ev, (void)len;
    ((wrk *)ud)->invoked = 1;
}
static void w_chunk(void *ud, sluice_channel *ch, uint64_t s, const uint8_t *d, size_t len, const sluice_payload *p) {
    (void)ud, (void)d, (void)len;
    sluice_channel_send_chunk_payload(ch, s, p);
}
static void w_choke(void *ud, sluice_channel *ch, uint64_t s) {
    (void)ud;
    sluice_channel_send_choke(ch, s);
}
static void w_socket_error(void *ud, sluice_channel *ch, int err) {
    (void)ch, (void)err;
    wrk *w = ud;
    if (!w->invoked && !w->again) {
        __atomic_add_fetch(&reconnects, 1, __ATOMIC_RELAXED);
        start_worker(1); /* from inside a callback */
        return;
    }
    bump(&finished, 1);
}
static void w_release(void *ud) {
    free(ud);
    bump(&live, -1);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: soak SECONDS [RSS_BOUND_KIB]\n");
        return 2;
    }
    double seconds = atof(argv[1]);
    long bound = argc > 2 ? atol(argv[2]) : 8192;
    WORKER.on_connect = w_connect;
    WORKER.on_invoke = w_invoke;
    WORKER.on_chunk = w_chunk;
    WORKER.on_choke = w_choke;
    WORKER.on_socket_error = w_socket_error;
    WORKER.on_release = w_release;
    sluice_server_callbacks scb = {on_accept, NULL};
    sluice_options *eo = sluice_options_new();
    sluice_options_set_role(eo, SLUICE_ROLE_ENGINE);
    sluice_server *srv;
    if (sluice_server_bind("127.0.0.1:0", eo, &scb, NULL, &srv) != SLUICE_OK) {
        fprintf(stderr, "bind: %s\n", sluice_last_error());
        return 1;
    }
    sluice_options_free(eo);
    sluice_server_endpoint(srv, endpoint, sizeof endpoint, NULL);
    double start = now_s(), next = start, warmup = seconds / 5 > 5 ? seconds / 5 : 5;
    if (warmup > seconds / 2) warmup = seconds / 2;
    static long ts[100000][2];
    static double tt[100000];
    int ns = 0;
    long cycles = 0;
    printf("soak c: %.0f s, warm-up %.0f s\n", seconds, warmup);
    while (now_s() - start < seconds) {
        reset_cycle = cycles % 4 == 3;
        finished = 0;
        for (int i = 0; i < WORKERS; i++) start_worker(0);
        pthread_mutex_lock(&mu);
        while (finished < WORKERS) pthread_cond_wait(&cv, &mu);
        pthread_mutex_unlock(&mu);
        /* Free every handle of the cycle; wait for every on_release. */
        pthread_mutex_lock(&wmu);
        for (int i = 0; i < n_workers; i++) sluice_channel_free(workers[i]);
        n_workers = 0;
        pthread_mutex_unlock(&wmu);
        pthread_mutex_lock(&emu);
        for (int i = 0; i < n_engines; i++) sluice_channel_free(engines[i]);
        n_engines = 0;
        pthread_mutex_unlock(&emu);
        pthread_mutex_lock(&mu);
        while (live > 0) pthread_cond_wait(&cv, &mu);
        pthread_mutex_unlock(&mu);
        cycles++;
        if (now_s() >= next && ns < 100000) {
            tt[ns] = now_s() - start;
            ts[ns][0] = rss_kib();
            ts[ns][1] = open_fds();
            printf("soak-sample lang=c t=%.1f rss_kib=%ld fds=%ld cycles=%ld connections=%ld sessions=%ld reconnects=%ld\n",
                   tt[ns], ts[ns][0], ts[ns][1], cycles, connections, sessions, reconnects);
            fflush(stdout);
            ns++;
            next += 1;
        }
    }
    sluice_server_free(srv);
    int first = 0;
    while (first < ns && tt[first] < warmup) first++;
    int n = ns - first;
    if (n < 2) {
        fprintf(stderr, "too few samples after the warm-up: run longer\n");
        return 1;
    }
    int k = n / 4 > 0 ? n / 4 : 1;
    /* RSS: the mean of each window; descriptors: the least of each (a
     * sample may catch sockets of the cycle that are still closing). */
    long r0 = 0, r1 = 0, f0 = ts[first][1], f1 = ts[ns - k][1];
    for (int i = 0; i < k; i++) {
        r0 += ts[first + i][0], r1 += ts[ns - k + i][0];
        if (ts[first + i][1] < f0) f0 = ts[first + i][1];
        if (ts[ns - k + i][1] < f1) f1 = ts[ns - k + i][1];
    }
    r0 /= k, r1 /= k;
    int ok = r1 - r0 < bound && labs(f1 - f0) <= 4;
    printf("soak-summary lang=c seconds=%.0f cycles=%ld connections=%ld sessions=%ld reconnects=%ld rss_start_kib=%ld "
           "rss_end_kib=%ld rss_drift_kib=%ld rss_bound_kib=%ld fds_start=%ld fds_end=%ld fd_drift=%ld result=%s\n",
           seconds, cycles, connections, sessions, reconnects, r0, r1, r1 - r0, bound, f0, f1, f1 - f0,
           ok ? "ok" : "failed");
    return ok ? 0 : 1;
}
