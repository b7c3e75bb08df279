/*
 * examples/c/worker.c as an engine runs it: a sluice_engine starts it as a
 * child process with the runtime's arguments, in both dialects, invokes
 * sessions with chunks, checks every chunk comes back on its session
 * followed by the close, then terminates it: the worker answers with its
 * own terminate, hangs up, and exits 0. run.sh builds the example next to
 * this program as ./example_worker.
 */
#include "harness.h"

#include <sys/wait.h>

#define B(s) (const uint8_t *)(s), (sizeof(s) - 1)
#define NS 20

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
    int handshakes, closes, terminates, gone, released, bad;
    uint64_t worker;
    uint64_t sessions[NS];
    char replies[NS][64];
    int64_t term_code;
    char term_reason[64];
    int gone_err;
} state;

static int get(int *f) {
    pthread_mutex_lock(&mu);
    int v = *f;
    pthread_mutex_unlock(&mu);
    return v;
}

#define WAIT_FOR(field, want)                                                                        \
    do {                                                                                             \
        int64_t end_ = now_ms() + timeout_ms();                                                      \
        while (get(&(field)) < (want)) {                                                             \
            if (now_ms() > end_) FAILF("waited for %s >= %d, got %d", #field, (want), get(&(field))); \
            sleep_ms(2);                                                                             \
        }                                                                                            \
    } while (0)

static int index_of(state *st, uint64_t s) {
    for (int i = 0; i < NS; i++)
        if (st->sessions[i] == s) return i;
    return -1;
}

static void on_handshake(void *ud, sluice_engine *e, uint64_t worker, const uint8_t *uuid, size_t len) {
    state *st = ud;
    (void)e;
    (void)uuid;
    (void)len;
    pthread_mutex_lock(&mu);
    st->worker = worker;
    st->handshakes++;
    pthread_mutex_unlock(&mu);
}

static void on_chunk(void *ud, sluice_engine *e, uint64_t worker, uint64_t session, const uint8_t *data, size_t len,
                     const sluice_payload *p) {
    state *st = ud;
    (void)e;
    (void)worker;
    (void)p;
    pthread_mutex_lock(&mu);
    int i = index_of(st, session);
    if (i < 0) st->bad++;
    else {
        size_t used = strlen(st->replies[i]);
        snprintf(st->replies[i] + used, sizeof st->replies[i] - used, "%s%.*s", used ? "|" : "", (int)len, (const char *)data);
    }
    pthread_mutex_unlock(&mu);
}

static void on_close(void *ud, sluice_engine *e, uint64_t worker, uint64_t session) {
    state *st = ud;
    (void)e;
    (void)worker;
    pthread_mutex_lock(&mu);
    int i = index_of(st, session);
    char want[64];
    snprintf(want, sizeof want, "s%d-a|s%d-b|s%d-c", i, i, i);
    if (i < 0 || strcmp(st->replies[i], want) != 0) {
        fprintf(stderr, "  session %d: replies %s, want %s\n", i, i >= 0 ? st->replies[i] : "?", want);
        st->bad++;
    }
    st->closes++;
    pthread_mutex_unlock(&mu);
}

static void on_terminate(void *ud, sluice_engine *e, uint64_t worker, int64_t code, const uint8_t *reason, size_t len) {
    state *st = ud;
    (void)e;
    (void)worker;
    pthread_mutex_lock(&mu);
    st->term_code = code;
    snprintf(st->term_reason, sizeof st->term_reason, "%.*s", (int)len, (const char *)reason);
    st->terminates++;
    pthread_mutex_unlock(&mu);
}

static void on_gone(void *ud, sluice_engine *e, uint64_t worker, int err) {
    state *st = ud;
    (void)e;
    (void)worker;
    pthread_mutex_lock(&mu);
    st->gone_err = err;
    st->gone++;
    pthread_mutex_unlock(&mu);
}

static void on_release(void *ud) {
    state *st = ud;
    pthread_mutex_lock(&mu);
    st->released++;
    pthread_mutex_unlock(&mu);
}

static void run_example(int dialect) {
    char path[200], ep[220];
    tmp_sock_path(path, sizeof path, dialect == SLUICE_DIALECT_V1 ? "example-v1" : "example-v0");
    snprintf(ep, sizeof ep, "unix:%s", path);
    const char *uuid = dialect == SLUICE_DIALECT_V1 ? "example-worker-v1" : "example-worker-v0";
    static state st;
    memset(&st, 0, sizeof st);
    sluice_engine_options *eo = NULL;
    CHECK_OK(sluice_engine_options_new(ep, dialect, &eo));
    CHECK_OK(sluice_engine_options_add_uuid(eo, uuid));
    sluice_engine_callbacks cbs;
    memset(&cbs, 0, sizeof cbs);
    cbs.size = sizeof cbs;
    cbs.on_handshake = on_handshake;
    cbs.on_chunk = on_chunk;
    cbs.on_close = on_close;
    cbs.on_terminate = on_terminate;
    cbs.on_gone = on_gone;
    cbs.on_release = on_release;
    sluice_engine *e = NULL;
    CHECK_OK(sluice_engine_bind(eo, &cbs, &st, &e));
    sluice_engine_options_free(eo);

    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (dialect == SLUICE_DIALECT_V1)
            execl("./example_worker", "example_worker", "--app", "echo", "--uuid", uuid, "--endpoint", path, "--protocol", "1",
                  "--locator", "127.0.0.1:10053", (char *)NULL);
        else
            execl("./example_worker", "example_worker", "--app", "echo", "--uuid", uuid, "--endpoint", path, (char *)NULL);
        _exit(127);
    }
    WAIT_FOR(st.handshakes, 1);
    uint64_t w = st.worker;
    for (int i = 0; i < NS; i++) {
        uint64_t s = 0;
        CHECK_OK(sluice_engine_worker_invoke(e, w, B("echo"), &s));
        pthread_mutex_lock(&mu);
        st.sessions[i] = s;
        pthread_mutex_unlock(&mu);
        const char *parts[] = {"a", "b", "c"};
        for (int k = 0; k < 3; k++) {
            char c[32];
            int n = snprintf(c, sizeof c, "s%d-%s", i, parts[k]);
            CHECK_OK(sluice_engine_stream_write(e, w, s, (const uint8_t *)c, (size_t)n));
        }
        CHECK_OK(sluice_engine_stream_close(e, w, s));
    }
    WAIT_FOR(st.closes, NS);
    CHECK(get(&st.bad) == 0);
    CHECK_OK(sluice_engine_worker_terminate(e, w, 1, B("stop")));
    WAIT_FOR(st.gone, 1);
    CHECK(st.terminates == 1 && st.term_code == 1 && strcmp(st.term_reason, "worker shut down") == 0);
    CHECK(st.gone_err == SLUICE_ESHUTDOWN);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) FAILF("the example worker ended with status %d", status);
    sluice_engine_free(e);
    WAIT_FOR(st.released, 1);
}

static void test_example_worker_v1(void) { run_example(SLUICE_DIALECT_V1); }
static void test_example_worker_v0(void) { run_example(SLUICE_DIALECT_V0); }

/* Without its arguments it says how to start it and exits 2. */
static void test_example_worker_usage(void) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, 2);
        execl("./example_worker", "example_worker", "--app", "x", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2);
}

int main(void) {
    RUN(test_example_worker_usage);
    RUN(test_example_worker_v1);
    RUN(test_example_worker_v0);
    return 0;
}
