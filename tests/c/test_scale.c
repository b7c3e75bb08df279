/*
 * Scale: 1,000 channels open at once, each doing a handshake and getting a
 * heartbeat back through a sluice Server; then 10,000 connect / close /
 * free cycles (SLUICE_TEST_CYCLES overrides; fewer under valgrind), with
 * every callbacks set released exactly once and no descriptor left open.
 */
#include "harness.h"

#include <dirent.h>
#include <sys/resource.h>

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int connected, heartbeats, released, errors;
} counters;

static counters client, server;

static void counters_init(counters *c) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
}

static void bump(counters *c, int *field) {
    pthread_mutex_lock(&c->mu);
    (*field)++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void wait_count(counters *c, int *field, int want, const char *what) {
    struct timespec dl = deadline_after(timeout_ms() * 3);
    pthread_mutex_lock(&c->mu);
    while (*field < want) {
        if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) == ETIMEDOUT) {
            int got = *field;
            pthread_mutex_unlock(&c->mu);
            FAILF("waited for %d %s, got %d", want, what, got);
        }
    }
    pthread_mutex_unlock(&c->mu);
}

/* The engine side: answers a handshake with a heartbeat, and frees its
 * channel from inside its own on_socket_error when the worker goes. */
static void e_handshake(void *ud, sluice_channel *ch, const uint8_t *uuid, size_t len) {
    (void)ud, (void)uuid, (void)len;
    CHECK_OK(sluice_channel_send_heartbeat(ch));
}
static void e_socket_error(void *ud, sluice_channel *ch, int err) {
    (void)ud;
    if (err != SLUICE_ESHUTDOWN && err != SLUICE_ECONNRESET) bump(&server, &server.errors);
    sluice_channel_free(ch);
}
static void e_release(void *ud) {
    (void)ud;
    bump(&server, &server.released);
}
static const sluice_callbacks ENGINE = {.on_handshake = e_handshake, .on_socket_error = e_socket_error, .on_release = e_release};

static void on_accept(void *ud, sluice_server *s, sluice_incoming *inc) {
    (void)ud, (void)s;
    sluice_channel *ch;
    CHECK_OK(sluice_incoming_start(inc, &ENGINE, NULL, &ch));
}
static const sluice_server_callbacks ACCEPT = {.on_accept = on_accept};

/* The worker side: handshake on connect, count the heartbeat. */
static void w_connect(void *ud, sluice_channel *ch) {
    char uuid[32];
    int n = snprintf(uuid, sizeof uuid, "worker-%ld", (long)(intptr_t)ud);
    CHECK_OK(sluice_channel_send_handshake(ch, (const uint8_t *)uuid, (size_t)n));
    bump(&client, &client.connected);
}
static void w_heartbeat(void *ud, sluice_channel *ch) {
    (void)ud, (void)ch;
    bump(&client, &client.heartbeats);
}
static void w_socket_error(void *ud, sluice_channel *ch, int err) {
    (void)ud, (void)ch;
    fprintf(stderr, "worker %ld: socket error %d\n", (long)(intptr_t)ud, err);
    bump(&client, &client.errors);
}
static void w_release(void *ud) {
    (void)ud;
    bump(&client, &client.released);
}
static const sluice_callbacks WORKER = {
    .on_connect = w_connect, .on_heartbeat = w_heartbeat, .on_socket_error = w_socket_error, .on_release = w_release};

static int open_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

static sluice_server *srv;
static char endpoint[220];
static int base_fds;

static void test_thousand_channels_at_once(void) {
    enum { N = 1000 };
    static sluice_channel *chans[N];
    counters_init(&client);
    counters_init(&server);
    for (int i = 0; i < N; i++) CHECK_OK(sluice_channel_connect(endpoint, NULL, &WORKER, (void *)(intptr_t)i, &chans[i]));
    wait_count(&client, &client.heartbeats, N, "heartbeats");
    CHECK(client.connected == N && client.errors == 0);
    for (int i = 0; i < N; i++) sluice_channel_free(chans[i]);
    wait_count(&client, &client.released, N, "worker releases");
    wait_count(&server, &server.released, N, "engine releases");
    CHECK(server.errors == 0);
}

static void test_connect_close_free_cycles(void) {
    const char *env = getenv("SLUICE_TEST_CYCLES");
    int cycles = env ? atoi(env) : under_valgrind() ? 2000 : 10000;
    counters_init(&client);
    counters_init(&server);
    int64_t start = now_ms();
    for (int i = 0; i < cycles; i++) {
        sluice_options *o = sluice_options_new();
        CHECK_OK(sluice_options_set_dialect(o, i % 2 ? SLUICE_DIALECT_V0 : SLUICE_DIALECT_V1));
        sluice_channel *ch = NULL;
        CHECK_OK(sluice_channel_connect(endpoint, o, &WORKER, (void *)(intptr_t)i, &ch));
        sluice_options_free(o);
        wait_count(&client, &client.connected, i + 1, "connects");
        CHECK_OK(sluice_channel_close(ch));
        sluice_channel_free(ch);
    }
    wait_count(&client, &client.released, cycles, "worker releases");
    wait_count(&server, &server.released, cycles, "engine releases");
    CHECK(client.errors == 0 && server.errors == 0);
    sleep_ms(50);
    CHECK(client.released == cycles && server.released == cycles);
    /* Every socket is closed again: the count is back where it started. */
    int64_t end = now_ms() + timeout_ms();
    while (open_fds() > base_fds && now_ms() < end) sleep_ms(10);
    if (open_fds() > base_fds) FAILF("%d descriptors open, %d before", open_fds(), base_fds);
    printf("# %d cycles in %lld ms\n", cycles, (long long)(now_ms() - start));
}

int main(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    char path[200];
    tmp_sock_path(path, sizeof path, "scale");
    snprintf(endpoint, sizeof endpoint, "unix:%s", path);
    CHECK_OK(sluice_server_bind(endpoint, NULL, &ACCEPT, NULL, &srv));
    base_fds = open_fds();
    RUN(test_thousand_channels_at_once);
    RUN(test_connect_close_free_cycles);
    sluice_server_free(srv);
    return 0;
}
