/*
 * examples/c/service.c as a user runs it: started against an in-process
 * Locator, it prints "ready NAME" once attached; then clients call its
 * ping, count and fail through the Locator, the registry lists it online,
 * and when its standard input closes it detaches (offline) and exits 0.
 * Killed, its connection drops and it goes offline; started again, it is
 * back. Bad arguments or no Locator: one line on stderr, exit 1. run.sh
 * builds the example next to this program as ./example_service.
 */
#include "mp.h"

#include <signal.h>
#include <sys/wait.h>

typedef struct {
    pid_t pid;
    int in, out, err; /* our ends of its stdin, stdout, stderr */
} child;

static child start(const char *locator, const char *name) {
    int pin[2], pout[2], perr[2];
    CHECK(pipe(pin) == 0 && pipe(pout) == 0 && pipe(perr) == 0);
    child c;
    c.pid = fork();
    CHECK(c.pid >= 0);
    if (c.pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(perr[1], 2);
        close(pin[1]);
        close(pout[0]);
        close(perr[0]);
        if (locator && name)
            execl("./example_service", "example_service", "--locator", locator, "--name", name, (char *)NULL);
        else if (name)
            execl("./example_service", "example_service", "--name", name, (char *)NULL);
        else
            execl("./example_service", "example_service", "--locator", locator, "--name", "x", "--extra", (char *)NULL);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    c.in = pin[1];
    c.out = pout[0];
    c.err = perr[0];
    return c;
}

/* Everything the fd gives until end of file (or the buffer is full). */
static void read_all(int fd, char *buf, size_t cap) {
    size_t n = 0;
    int64_t end = now_ms() + timeout_ms();
    while (n + 1 < cap) {
        if (now_ms() > end) FAILF("no end of file within %d ms (read: %.*s)", timeout_ms(), (int)n, buf);
        if (!wait_readable(fd, 50)) continue;
        ssize_t k = read(fd, buf + n, cap - 1 - n);
        if (k <= 0) break;
        n += (size_t)k;
    }
    buf[n] = 0;
}

/* One line from the child's stdout. */
static void read_line(int fd, char *buf, size_t cap) {
    size_t n = 0;
    int64_t end = now_ms() + timeout_ms();
    while (n + 1 < cap) {
        if (now_ms() > end) FAILF("no line within %d ms (read: %.*s)", timeout_ms(), (int)n, buf);
        if (!wait_readable(fd, 50)) continue;
        ssize_t k = read(fd, buf + n, 1);
        if (k <= 0) break;
        if (buf[n] == '\n') break;
        n++;
    }
    buf[n] = 0;
}

static int wait_exit(pid_t pid) {
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void finish(child *c) {
    close(c->in);
    close(c->out);
    close(c->err);
}

static sluice_locator_server *srv;
static sluice_registry *reg;
static sluice_locator *loc;

static void check_methods(const char *name) {
    sluice_service *svc = NULL;
    CHECK_OK(sluice_locator_service(loc, name, &svc));
    const uint8_t *v;
    size_t n;
    sluice_call *c = NULL;
    mp a = {0};
    mp_map(mp_str(mp_uint(mp_array(&a, 3), 1), "two"), 0);
    CHECK_OK(sluice_service_call(svc, "ping", a.b, a.n, (uint64_t)timeout_ms(), &c));
    CHECK_OK(sluice_call_value(c, (uint64_t)timeout_ms(), &v, &n));
    CHECK_TEXT(v, n, "[1, \"two\", {}]");
    sluice_call_free(c);

    mp four = {0};
    mp_uint(mp_array(&four, 1), 4);
    CHECK_OK(sluice_service_call(svc, "count", four.b, four.n, (uint64_t)timeout_ms(), &c));
    CHECK_OK(sluice_call_collect(c, (uint64_t)timeout_ms(), &v, &n));
    CHECK_TEXT(v, n, "[[\"write\", [0]], [\"write\", [1]], [\"write\", [2]], [\"write\", [3]], [\"close\", []]]");
    sluice_call_free(c);

    mp big = {0};
    mp_uint(mp_array(&big, 1), 300);
    CHECK_OK(sluice_service_call(svc, "count", big.b, big.n, (uint64_t)timeout_ms(), &c));
    sluice_reply r;
    for (int i = 0; i < 300; i++) CHECK_OK(sluice_call_next(c, (uint64_t)timeout_ms(), &r));
    CHECK_TEXT(r.args, r.args_len, "[299]");
    CHECK_OK(sluice_call_next(c, (uint64_t)timeout_ms(), &r));
    CHECK(strcmp(r.name, "close") == 0);
    sluice_call_free(c);

    CHECK_OK(sluice_service_call(svc, "fail", NULL, 0, (uint64_t)timeout_ms(), &c));
    CHECK_RC(sluice_call_value(c, (uint64_t)timeout_ms(), &v, &n), SLUICE_E_SERVICE);
    CHECK_SERVICE_ERROR(42, 7, "failed on request");
    sluice_call_free(c);

    mp bad = {0};
    mp_str(mp_array(&bad, 1), "x");
    CHECK_OK(sluice_service_call(svc, "count", bad.b, bad.n, (uint64_t)timeout_ms(), &c));
    CHECK_RC(sluice_call_next(c, (uint64_t)timeout_ms(), &r), SLUICE_E_SERVICE);
    sluice_call_free(c);
    sluice_service_free(svc);

    /* Remote invocation through the registry reaches it too. */
    CHECK_OK(sluice_registry_invoke(reg, name, "ping", a.b, a.n, &c));
    CHECK_OK(sluice_call_value(c, (uint64_t)timeout_ms(), &v, &n));
    CHECK_TEXT(v, n, "[1, \"two\", {}]");
    sluice_call_free(c);
}

/* i from [i], a msgpack array of one unsigned integer (any width); -1 if not. */
static int64_t index_of(const uint8_t *a, size_t n) {
    if (n < 2 || a[0] != 0x91) return -1;
    if (a[1] < 0x80) return n == 2 ? a[1] : -1;
    size_t w = a[1] == 0xcc ? 1 : a[1] == 0xcd ? 2 : a[1] == 0xce ? 4 : a[1] == 0xcf ? 8 : 0;
    if (w == 0 || n != 2 + w) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < w; i++) v = (v << 8) | a[2 + i];
    return (int64_t)v;
}

/* A stream larger than the send queue: the example's handler meets
 * back-pressure and finishes from a thread of its own; every chunk arrives,
 * in order. */
static void check_long_count(const char *name, uint64_t n) {
    sluice_service *svc = NULL;
    CHECK_OK(sluice_locator_service(loc, name, &svc));
    mp a = {0};
    mp_uint(mp_array(&a, 1), n);
    sluice_call *c = NULL;
    CHECK_OK(sluice_service_call(svc, "count", a.b, a.n, (uint64_t)timeout_ms(), &c));
    sluice_reply r;
    int64_t start = now_ms();
    for (uint64_t i = 0; i < n; i++) {
        CHECK_OK(sluice_call_next(c, (uint64_t)timeout_ms(), &r));
        if (strcmp(r.name, "write") != 0 || index_of(r.args, r.args_len) != (int64_t)i)
            FAILF("reply %llu: %s %s", (unsigned long long)i, r.name, mp_text(r.args, r.args_len));
    }
    CHECK_OK(sluice_call_next(c, (uint64_t)timeout_ms(), &r));
    CHECK(strcmp(r.name, "close") == 0 && r.last == 1);
    printf("# count(%llu) from the example service: %lld ms\n", (unsigned long long)n, (long long)(now_ms() - start));
    sluice_call_free(c);
    sluice_service_free(svc);
}

static void test_setup(void) {
    CHECK_OK(sluice_locator_server_bind("127.0.0.1:0", NULL, &srv));
    CHECK_OK(sluice_locator_server_registry(srv, &reg));
    CHECK_OK(sluice_locator_new(sluice_locator_server_endpoint(srv), &loc));
}

static void test_example_service(void) {
    child c = start(sluice_locator_server_endpoint(srv), "demo-c");
    char line[256];
    read_line(c.out, line, sizeof line);
    CHECK(strcmp(line, "ready demo-c") == 0);
    CHECK(registry_online(reg, "demo-c") == 1);
    sluice_resolved *r = NULL;
    CHECK_OK(sluice_locator_resolve(loc, "demo-c", (uint64_t)timeout_ms(), &r));
    CHECK(sluice_resolved_version(r) == 1 && sluice_resolved_method_count(r) == 3);
    sluice_resolved_free(r);
    check_methods("demo-c");
    check_long_count("demo-c", under_valgrind() ? 100000 : 2000000);
    /* End of its stdin: it detaches and exits 0, with nothing more said. */
    close(c.in);
    c.in = open("/dev/null", O_RDONLY);
    char rest[256];
    read_all(c.out, rest, sizeof rest);
    CHECK(strcmp(rest, "") == 0);
    read_all(c.err, rest, sizeof rest);
    CHECK(strcmp(rest, "") == 0);
    CHECK(wait_exit(c.pid) == 0);
    WAIT_UNTIL(registry_online(reg, "demo-c") == 0);
    finish(&c);
}

static void test_killed_then_back(void) {
    child c = start(sluice_locator_server_endpoint(srv), "demo-k");
    char line[256];
    read_line(c.out, line, sizeof line);
    CHECK(strcmp(line, "ready demo-k") == 0);
    CHECK(registry_online(reg, "demo-k") == 1);
    kill(c.pid, SIGKILL);
    CHECK(wait_exit(c.pid) == 128 + SIGKILL);
    WAIT_UNTIL(registry_online(reg, "demo-k") == 0);
    finish(&c);
    c = start(sluice_locator_server_endpoint(srv), "demo-k");
    read_line(c.out, line, sizeof line);
    CHECK(strcmp(line, "ready demo-k") == 0);
    CHECK(registry_online(reg, "demo-k") == 1);
    check_methods("demo-k");
    close(c.in);
    c.in = open("/dev/null", O_RDONLY);
    CHECK(wait_exit(c.pid) == 0);
    WAIT_UNTIL(registry_online(reg, "demo-k") == 0);
    finish(&c);
}

/* Exit 1 with one line on stderr, nothing on stdout. */
static void expect_error(child c, const char *starts) {
    char out[256], err[1024];
    close(c.in);
    c.in = open("/dev/null", O_RDONLY);
    read_all(c.out, out, sizeof out);
    read_all(c.err, err, sizeof err);
    CHECK(wait_exit(c.pid) == 1);
    CHECK(strcmp(out, "") == 0);
    size_t n = strlen(err);
    if (n == 0 || err[n - 1] != '\n' || strchr(err, '\n') != err + n - 1) FAILF("stderr is not one line: %s", err);
    if (strncmp(err, starts, strlen(starts)) != 0) FAILF("stderr %s, want it to start with %s", err, starts);
    finish(&c);
}

static void test_errors(void) {
    expect_error(start(NULL, "x"), "service: --locator is required");
    expect_error(start(sluice_locator_server_endpoint(srv), NULL), "service: unexpected argument");
    uint16_t port = 0;
    int fd = tcp_listen(&port, 1);
    close(fd);
    char dead[64];
    snprintf(dead, sizeof dead, "127.0.0.1:%u", port);
    expect_error(start(dead, "x"), "service: cannot attach x to 127.0.0.1:");
    expect_error(start("nowhere", "x"), "service: endpoint \"nowhere\"");
    /* A name already online: the Locator refuses the second. */
    child a = start(sluice_locator_server_endpoint(srv), "twice");
    char line[256];
    read_line(a.out, line, sizeof line);
    CHECK(strcmp(line, "ready twice") == 0);
    expect_error(start(sluice_locator_server_endpoint(srv), "twice"), "service: cannot attach twice to ");
    close(a.in);
    a.in = open("/dev/null", O_RDONLY);
    CHECK(wait_exit(a.pid) == 0);
    finish(&a);
}

static void test_teardown(void) {
    sluice_locator_free(loc);
    sluice_registry_free(reg);
    sluice_locator_server_free(srv);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    RUN(test_setup);
    RUN(test_example_service);
    RUN(test_killed_then_back);
    RUN(test_errors);
    RUN(test_teardown);
    return 0;
}
