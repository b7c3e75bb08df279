/*
 * (One program: every service scenario shares its in-process Locator.)
 * Cocaine services through the C API, over real sockets: an in-process
 * Locator server (sluice_locator_server) with the demo services, services
 * defined here with C handlers (attached over the client's own Locator
 * connection, or hosted and published), and clients resolving and calling
 * them: values, streams, service errors, unknown methods, failover, the
 * Logger's verbosity, the registry's list and change callbacks, remote
 * invocation, timeouts and misuse.
 */
#include "mp.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* ------------------------------------------------------------------------ */
/* The test service "calc": its handlers, run on library threads.           */

typedef struct {
    int calls, released, wrong_thread_rc;
    sluice_responder *kept; /* "hold": answered by the test thread */
} calc_state;

static calc_state calc;

static int calc_get(int *f) {
    pthread_mutex_lock(&mu);
    int v = *f;
    pthread_mutex_unlock(&mu);
    return v;
}

/* The responder "hold" kept, once it has (NULL meanwhile). */
static sluice_responder *take_kept(void) {
    pthread_mutex_lock(&mu);
    sluice_responder *r = calc.kept;
    calc.kept = NULL;
    pthread_mutex_unlock(&mu);
    return r;
}

static void *answer_later(void *p) {
    sluice_responder *r = p;
    sleep_ms(20);
    mp m = {0};
    mp_str(mp_array(&m, 1), "later");
    if (sluice_responder_value(r, m.b, m.n) != SLUICE_OK) fprintf(stderr, "later: %s\n", sluice_last_error());
    sluice_responder_free(r);
    return NULL;
}

static void calc_call(void *ud, sluice_responder *r, const char *method, const uint8_t *args, size_t len) {
    calc_state *st = ud;
    pthread_mutex_lock(&mu);
    st->calls++;
    pthread_mutex_unlock(&mu);
    if (strcmp(method, "ping") == 0) {
        sluice_responder_value(r, args, len);
    } else if (strcmp(method, "count") == 0) {
        /* count(n) with n < 128: [0x91, n] */
        unsigned n = len == 2 ? args[1] : 0;
        for (unsigned i = 0; i < n; i++) {
            mp m = {0};
            mp_uint(mp_array(&m, 1), i);
            sluice_responder_write(r, m.b, m.n);
        }
        sluice_responder_close(r);
    } else if (strcmp(method, "fail") == 0) {
        sluice_responder_error(r, 42, 7, "failed on request");
    } else if (strcmp(method, "drop") == 0) {
        /* freed without an answer: the library answers [7, 7] */
    } else if (strcmp(method, "later") == 0) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, answer_later, r) == 0);
        pthread_detach(t);
        return;
    } else if (strcmp(method, "block") == 0) {
        /* A blocking call on the handler's thread is refused, not a deadlock. */
        sluice_locator *loc = NULL;
        sluice_resolved *res = NULL;
        sluice_locator_new("127.0.0.1:1", &loc);
        int rc = sluice_locator_resolve(loc, "calc", 1000, &res);
        sluice_locator_free(loc);
        pthread_mutex_lock(&mu);
        st->wrong_thread_rc = rc;
        pthread_mutex_unlock(&mu);
        mp m = {0};
        mp_uint(mp_array(&m, 1), (uint64_t)rc);
        sluice_responder_value(r, m.b, m.n);
    } else if (strcmp(method, "hold") == 0) {
        pthread_mutex_lock(&mu);
        st->kept = r;
        pthread_mutex_unlock(&mu);
        return;
    }
    sluice_responder_free(r);
}

static void calc_release(void *ud) {
    calc_state *st = ud;
    pthread_mutex_lock(&mu);
    st->released++;
    pthread_mutex_unlock(&mu);
}

static sluice_service_def *calc_def(const char *name) {
    sluice_service_def *def = NULL;
    CHECK_OK(sluice_service_def_new(name, 1, &def));
    sluice_handler h = {sizeof h, calc_call, calc_release};
    CHECK_OK(sluice_service_def_add(def, "ping", SLUICE_METHOD_PRIMITIVE, &h, &calc));
    CHECK_OK(sluice_service_def_add(def, "count", SLUICE_METHOD_STREAMING, &h, &calc));
    CHECK_OK(sluice_service_def_add(def, "fail", SLUICE_METHOD_PRIMITIVE, &h, &calc));
    CHECK_OK(sluice_service_def_add(def, "drop", SLUICE_METHOD_STREAMING, &h, &calc));
    CHECK_OK(sluice_service_def_add(def, "later", SLUICE_METHOD_PRIMITIVE, &h, &calc));
    CHECK_OK(sluice_service_def_add(def, "block", SLUICE_METHOD_PRIMITIVE, &h, &calc));
    CHECK_OK(sluice_service_def_add(def, "hold", SLUICE_METHOD_PRIMITIVE, &h, &calc));
    return def;
}

/* ------------------------------------------------------------------------ */
/* Registry change events, as lines "name online|offline".                  */

typedef struct {
    char lines[64][96];
    int n, released;
} changes;

static void on_change(void *ud, const sluice_entry *e) {
    changes *c = ud;
    pthread_mutex_lock(&mu);
    if (c->n < 64) snprintf(c->lines[c->n++], sizeof c->lines[0], "%s %s", e->name, e->online ? "online" : "offline");
    pthread_mutex_unlock(&mu);
}

static void on_change_release(void *ud) {
    changes *c = ud;
    pthread_mutex_lock(&mu);
    c->released++;
    pthread_mutex_unlock(&mu);
}

static int changes_has(changes *c, int from, const char *line) {
    pthread_mutex_lock(&mu);
    int found = 0;
    for (int i = from; i < c->n && !found; i++) found = strcmp(c->lines[i], line) == 0;
    pthread_mutex_unlock(&mu);
    return found;
}

/* ------------------------------------------------------------------------ */
/* The fixture: a Locator on a free port with the demo services, "calc"    */
/* attached to it by a client of this process.                              */

static sluice_locator_server *srv;
static sluice_registry *reg;
static sluice_locator *loc;
static sluice_attached *calc_att;
static changes chg;

static void setup(void) {
    CHECK_OK(sluice_locator_server_bind("127.0.0.1:0", NULL, &srv));
    CHECK_OK(sluice_locator_server_registry(srv, &reg));
    sluice_registry_callbacks cbs = {sizeof cbs, on_change, on_change_release};
    CHECK_OK(sluice_registry_on_change(reg, &cbs, &chg));
    CHECK_OK(sluice_locator_server_add_demo(srv, SLUICE_LOG_WARNING));
    CHECK(changes_has(&chg, 0, "echo online") && changes_has(&chg, 0, "logging online"));
    CHECK_OK(sluice_locator_new(sluice_locator_server_endpoint(srv), &loc));
    sluice_service_def *def = calc_def("calc");
    CHECK_OK(sluice_locator_attach(loc, def, (uint64_t)timeout_ms(), &calc_att));
    sluice_service_def_free(def);
    CHECK(sluice_attached_is_live(calc_att) == 1);
    CHECK(strncmp(sluice_attached_endpoints(calc_att), "127.0.0.1:", 10) == 0);
}

static sluice_call *call(sluice_service *svc, const char *method, const mp *args) {
    sluice_call *c = NULL;
    CHECK_OK(sluice_service_call(svc, method, args ? args->b : NULL, args ? args->n : 0, (uint64_t)timeout_ms(), &c));
    return c;
}

static sluice_service *service(const char *name) {
    sluice_service *s = NULL;
    CHECK_OK(sluice_locator_service(loc, name, &s));
    return s;
}

/* ------------------------------------------------------------------------ */

static void test_resolve(void) {
    sluice_resolved *r = NULL;
    CHECK_OK(sluice_locator_resolve(loc, "calc", (uint64_t)timeout_ms(), &r));
    CHECK(strcmp(sluice_resolved_name(r), "calc") == 0);
    CHECK(sluice_resolved_version(r) == 1);
    CHECK(strcmp(sluice_resolved_endpoints(r), sluice_attached_endpoints(calc_att)) == 0);
    CHECK(sluice_resolved_method_count(r) == 7);
    sluice_method_info m;
    CHECK_OK(sluice_resolved_method(r, 0, &m));
    CHECK(m.id == 0 && strcmp(m.name, "ping") == 0);
    CHECK(strcmp(m.tx, "none") == 0);
    CHECK(strcmp(m.rx, "{0 value, 1 error}") == 0);
    CHECK_OK(sluice_resolved_method(r, 1, &m));
    CHECK(m.id == 1 && strcmp(m.name, "count") == 0);
    CHECK(strcmp(m.rx, "{0 write*, 1 error, 2 close}") == 0);
    CHECK_RC(sluice_resolved_method(r, 7, &m), SLUICE_E_INVALID);
    const char *text = sluice_resolved_text(r);
    CHECK(strncmp(text, "service calc (protocol version 1)\nendpoints: 127.0.0.1:", 55) == 0);
    CHECK(strstr(text, "count  tx: none  rx: {0 write*, 1 error, 2 close}") != NULL);
    sluice_resolved_free(r);

    /* The Locator announces itself and the demo services too. */
    CHECK_OK(sluice_locator_resolve(loc, "math", 0, &r));
    CHECK(sluice_resolved_method_count(r) == 4);
    sluice_resolved_free(r);

    r = (sluice_resolved *)1;
    CHECK_RC(sluice_locator_resolve(loc, "nonexistent", (uint64_t)timeout_ms(), &r), SLUICE_E_NOT_FOUND);
    CHECK(r == NULL);
    CHECK(strcmp(sluice_last_error(), "service 'nonexistent' is not available") == 0);
    CHECK_RC(sluice_last_service_error(NULL, NULL, NULL, NULL), SLUICE_E_STATE);
}

static void test_primitive_and_streaming(void) {
    sluice_service *svc = service("calc");
    CHECK(sluice_service_state(svc) == SLUICE_SERVICE_CLOSED);
    mp a = {0};
    mp_str(mp_uint(mp_array(&a, 2), 1), "two");
    sluice_call *c = call(svc, "ping", &a);
    CHECK(sluice_service_state(svc) == SLUICE_SERVICE_CONNECTED);
    const uint8_t *v;
    size_t n;
    CHECK_OK(sluice_call_value(c, (uint64_t)timeout_ms(), &v, &n));
    CHECK_TEXT(v, n, "[1, \"two\"]");
    CHECK_RC(sluice_call_next(c, 10, &(sluice_reply){0}), SLUICE_E_CLOSED);
    sluice_call_free(c);

    /* A stream, collected. */
    mp three = {0};
    mp_uint(mp_array(&three, 1), 3);
    c = call(svc, "count", &three);
    CHECK_OK(sluice_call_collect(c, (uint64_t)timeout_ms(), &v, &n));
    CHECK_TEXT(v, n, "[[\"write\", [0]], [\"write\", [1]], [\"write\", [2]], [\"close\", []]]");
    sluice_call_free(c);

    /* The same stream, reply by reply. */
    c = call(svc, "count", &three);
    sluice_reply r;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(sluice_call_next(c, (uint64_t)timeout_ms(), &r));
        CHECK(strcmp(r.name, "write") == 0 && r.last == 0);
        char want[16];
        snprintf(want, sizeof want, "[%d]", i);
        CHECK_TEXT(r.args, r.args_len, want);
    }
    CHECK_OK(sluice_call_next(c, (uint64_t)timeout_ms(), &r));
    CHECK(strcmp(r.name, "close") == 0 && r.last == 1);
    CHECK_TEXT(r.args, r.args_len, "[]");
    CHECK_RC(sluice_call_next(c, (uint64_t)timeout_ms(), &r), SLUICE_E_CLOSED);
    sluice_call_free(c);

    /* Many calls in flight on one connection, read in reverse order. */
    sluice_call *calls[20];
    for (int i = 0; i < 20; i++) {
        mp m = {0};
        mp_uint(mp_array(&m, 1), (uint64_t)i);
        calls[i] = call(svc, "ping", &m);
    }
    for (int i = 19; i >= 0; i--) {
        char want[16];
        snprintf(want, sizeof want, "[%d]", i);
        CHECK_OK(sluice_call_value(calls[i], (uint64_t)timeout_ms(), &v, &n));
        CHECK_TEXT(v, n, want);
        sluice_call_free(calls[i]);
    }

    /* A value asked of a stream is a bad reply. */
    c = call(svc, "count", &three);
    CHECK_RC(sluice_call_value(c, (uint64_t)timeout_ms(), &v, &n), SLUICE_E_BAD_REPLY);
    CHECK(strcmp(sluice_last_error(), "expected a value, got 'write'") == 0);
    sluice_call_free(c);

    CHECK_OK(sluice_service_close(svc));
    CHECK(sluice_service_state(svc) == SLUICE_SERVICE_CLOSED);
    c = call(svc, "ping", &a); /* connects again */
    CHECK_OK(sluice_call_value(c, (uint64_t)timeout_ms(), &v, &n));
    sluice_call_free(c);
    sluice_service_free(svc);
}

static void test_service_errors(void) {
    sluice_service *svc = service("calc");
    sluice_call *c = call(svc, "fail", NULL);
    const uint8_t *v;
    size_t n;
    CHECK_RC(sluice_call_value(c, (uint64_t)timeout_ms(), &v, &n), SLUICE_E_SERVICE);
    CHECK(strcmp(sluice_last_error(), "the service answered with an error: [42, 7] failed on request") == 0);
    CHECK_SERVICE_ERROR(42, 7, "failed on request");
    CHECK_RC(sluice_call_value(c, 10, &v, &n), SLUICE_E_CLOSED);
    CHECK_RC(sluice_last_service_error(NULL, NULL, NULL, NULL), SLUICE_E_STATE);
    sluice_call_free(c);

    /* A handler that frees its responder without answering (a C handler's
     * "exception"): the caller gets the uncaught-error code, never a hang. */
    c = call(svc, "drop", NULL);
    sluice_reply r;
    CHECK_RC(sluice_call_next(c, (uint64_t)timeout_ms(), &r), SLUICE_E_SERVICE);
    CHECK_SERVICE_ERROR(7, 7, "'drop' ended without a reply");
    sluice_call_free(c);

    /* The demo services' errors. */
    sluice_service *math = service("math");
    mp d = {0};
    mp_uint(mp_uint(mp_array(&d, 2), 1), 0);
    c = call(math, "div", &d);
    CHECK_RC(sluice_call_value(c, (uint64_t)timeout_ms(), &v, &n), SLUICE_E_SERVICE);
    CHECK_SERVICE_ERROR(42, 1, "division by zero");
    sluice_call_free(c);

    /* An unknown method: a clear error, no call. */
    c = (sluice_call *)1;
    CHECK_RC(sluice_service_call(svc, "nope", NULL, 0, (uint64_t)timeout_ms(), &c), SLUICE_E_UNKNOWN_METHOD);
    CHECK(c == NULL);
    CHECK(strcmp(sluice_last_error(), "service 'calc' has no method 'nope'") == 0);

    /* An unknown service. */
    sluice_service *ghost = service("ghost");
    CHECK_RC(sluice_service_call(ghost, "ping", NULL, 0, (uint64_t)timeout_ms(), &c), SLUICE_E_NOT_FOUND);
    CHECK(sluice_service_state(ghost) == SLUICE_SERVICE_ERROR);
    sluice_service_free(ghost);

    /* Arguments that are not a msgpack array. */
    CHECK_RC(sluice_service_call(svc, "ping", (const uint8_t *)"\x01", 1, 0, &c), SLUICE_E_INVALID);
    CHECK(strcmp(sluice_last_error(), "args must be a msgpack array, not 1") == 0);
    CHECK_RC(sluice_service_call(svc, "ping", (const uint8_t *)"\x92\x01", 2, 0, &c), SLUICE_E_INVALID);
    sluice_service_free(math);
    sluice_service_free(svc);
}

static void test_handler_threads(void) {
    sluice_service *svc = service("calc");
    const uint8_t *v;
    size_t n;
    /* Answered later, from another thread. */
    sluice_call *c = call(svc, "later", NULL);
    CHECK_OK(sluice_call_value(c, (uint64_t)timeout_ms(), &v, &n));
    CHECK_TEXT(v, n, "[\"later\"]");
    sluice_call_free(c);

    /* A blocking call inside a handler is refused with SLUICE_E_WRONG_THREAD. */
    c = call(svc, "block", NULL);
    CHECK_OK(sluice_call_value(c, (uint64_t)timeout_ms(), &v, &n));
    char want[16];
    snprintf(want, sizeof want, "[%d]", SLUICE_E_WRONG_THREAD);
    CHECK_TEXT(v, n, want);
    CHECK(calc_get(&calc.wrong_thread_rc) == SLUICE_E_WRONG_THREAD);
    sluice_call_free(c);

    /* Nothing yet: a timeout, and the call stays usable. */
    c = call(svc, "hold", NULL);
    sluice_reply r;
    CHECK_RC(sluice_call_next(c, 50, &r), SLUICE_E_TIMEOUT);
    sluice_responder *kept = NULL;
    WAIT_UNTIL((kept = take_kept()) != NULL);
    CHECK(sluice_responder_is_done(kept) == 0);
    CHECK_OK(sluice_responder_value(kept, NULL, 0));
    CHECK(sluice_responder_is_done(kept) == 1);
    CHECK_RC(sluice_responder_value(kept, NULL, 0), SLUICE_E_CLOSED);
    CHECK_RC(sluice_responder_write(kept, NULL, 0), SLUICE_E_CLOSED);
    sluice_responder_free(kept);
    CHECK_OK(sluice_call_next(c, (uint64_t)timeout_ms(), &r));
    CHECK(strcmp(r.name, "value") == 0 && r.last == 1);
    CHECK_TEXT(r.args, r.args_len, "[]");
    sluice_call_free(c);

    /* A write on a primitive method is not allowed by its protocol. */
    c = call(svc, "hold", NULL);
    WAIT_UNTIL((kept = take_kept()) != NULL);
    CHECK_RC(sluice_responder_write(kept, NULL, 0), SLUICE_E_STATE);
    CHECK(strcmp(sluice_last_error(), "'write' is not allowed in the current protocol") == 0);
    sluice_responder_free(kept); /* unanswered: the caller gets [7, 7] */
    CHECK_RC(sluice_call_next(c, (uint64_t)timeout_ms(), &r), SLUICE_E_SERVICE);
    CHECK_SERVICE_ERROR(7, 7, "'hold' ended without a reply");
    sluice_call_free(c);
    sluice_service_free(svc);
}

/* A port nothing listens on. */
static uint16_t dead_port(void) {
    uint16_t port = 0;
    int fd = tcp_listen(&port, 1);
    close(fd);
    return port;
}

static void test_failover(void) {
    char eps[128];
    uint16_t dead = dead_port();
    snprintf(eps, sizeof eps, "127.0.0.1:%u,%s", dead, sluice_locator_server_endpoint(srv));
    sluice_locator *two = NULL;
    CHECK_OK(sluice_locator_new(eps, &two));
    sluice_resolved *r = NULL;
    CHECK_OK(sluice_locator_resolve(two, "calc", (uint64_t)timeout_ms(), &r));
    CHECK(sluice_resolved_version(r) == 1);
    sluice_resolved_free(r);
    sluice_service *svc = NULL;
    CHECK_OK(sluice_locator_service(two, "echo", &svc));
    mp a = {0};
    mp_str(mp_str(mp_array(&a, 2), "a"), "b");
    sluice_call *c = call(svc, "echo", &a);
    const uint8_t *v;
    size_t n;
    CHECK_OK(sluice_call_collect(c, (uint64_t)timeout_ms(), &v, &n));
    CHECK_TEXT(v, n, "[[\"write\", [\"a\"]], [\"write\", [\"b\"]], [\"close\", []]]");
    sluice_call_free(c);
    sluice_service_free(svc);
    sluice_locator_free(two);

    /* Every endpoint dead: the connect error names each, with its errno. */
    snprintf(eps, sizeof eps, "127.0.0.1:%u", dead);
    CHECK_OK(sluice_locator_new(eps, &two));
    CHECK_RC(sluice_locator_resolve(two, "calc", (uint64_t)timeout_ms(), &r), SLUICE_E_IO);
    CHECK(sluice_last_errno() == SLUICE_ECONNREFUSED);
    char want[128];
    snprintf(want, sizeof want, "cannot connect to the locator: 127.0.0.1:%u (ECONNREFUSED)", dead);
    CHECK(strcmp(sluice_last_error(), want) == 0);
    sluice_locator_free(two);
}

static void test_logger_verbosity(void) {
    sluice_logger *lg = NULL;
    CHECK_OK(sluice_logger_new(loc, "ctest", &lg));
    int sent = -1;
    CHECK_OK(sluice_logger_info(lg, "below the verbosity", &sent));
    CHECK(sent == 0);
    CHECK_OK(sluice_logger_debug(lg, "below too", &sent));
    CHECK(sent == 0);
    CHECK_OK(sluice_logger_warning(lg, "at the verbosity", &sent));
    CHECK(sent == 1);
    mp attrs = {0};
    mp_uint(mp_str(mp_map(&attrs, 1), "disk"), 3);
    CHECK_OK(sluice_logger_emit(lg, SLUICE_LOG_ERROR, "disk full", attrs.b, attrs.n, (uint64_t)timeout_ms(), &sent));
    CHECK(sent == 1);
    CHECK_RC(sluice_logger_emit(lg, 9, "x", NULL, 0, 0, &sent), SLUICE_E_INVALID);
    CHECK_RC(sluice_logger_emit(lg, SLUICE_LOG_ERROR, "x", (const uint8_t *)"\x90", 1, 0, &sent), SLUICE_E_INVALID);
    /* The service received exactly the two at or above warning, in order. */
    char log[4096];
    size_t len = 0;
    const char *want = "[warning] app/ctest: at the verbosity\n[error] app/ctest: disk full {disk=3}\n";
    int64_t end = now_ms() + timeout_ms();
    for (;;) {
        CHECK_OK(sluice_locator_server_demo_log(srv, log, sizeof log, &len));
        if (strcmp(log, want) == 0) break;
        if (now_ms() > end) FAILF("demo log %s, want %s", log, want);
        sleep_ms(5);
    }
    sluice_logger_free(lg);
}

static void test_demo_services(void) {
    const uint8_t *v;
    size_t n;
    sluice_service *math = service("math");
    mp a = {0};
    mp_uint(mp_uint(mp_array(&a, 2), 2), 3);
    sluice_call *c = call(math, "add", &a);
    CHECK_OK(sluice_call_value(c, (uint64_t)timeout_ms(), &v, &n));
    CHECK_TEXT(v, n, "[5]");
    sluice_call_free(c);
    sluice_service_free(math);

    sluice_service *kv = service("kv");
    mp set = {0};
    mp_uint(mp_str(mp_array(&set, 2), "k"), 42);
    c = call(kv, "set", &set);
    CHECK_OK(sluice_call_value(c, (uint64_t)timeout_ms(), &v, &n));
    sluice_call_free(c);
    mp get = {0};
    mp_str(mp_array(&get, 1), "k");
    c = call(kv, "get", &get);
    CHECK_OK(sluice_call_value(c, (uint64_t)timeout_ms(), &v, &n));
    CHECK_TEXT(v, n, "[42]");
    sluice_call_free(c);
    sluice_service_free(kv);

    /* echo.relay: the caller streams too. */
    sluice_service *echo = service("echo");
    c = call(echo, "relay", NULL);
    mp w = {0};
    mp_str(mp_array(&w, 1), "one");
    CHECK_OK(sluice_call_send(c, "write", w.b, w.n));
    sluice_reply r;
    CHECK_OK(sluice_call_next(c, (uint64_t)timeout_ms(), &r));
    CHECK(strcmp(r.name, "write") == 0);
    CHECK_TEXT(r.args, r.args_len, "[\"one\"]");
    CHECK_RC(sluice_call_send(c, "value", NULL, 0), SLUICE_E_STATE);
    CHECK_OK(sluice_call_send(c, "close", NULL, 0));
    CHECK_OK(sluice_call_next(c, (uint64_t)timeout_ms(), &r));
    CHECK(strcmp(r.name, "close") == 0 && r.last == 1);
    CHECK_RC(sluice_call_send(c, "write", w.b, w.n), SLUICE_E_STATE);
    sluice_call_free(c);
    sluice_service_free(echo);

    CHECK_RC(sluice_locator_server_add_demo(srv, SLUICE_LOG_INFO), SLUICE_E_STATE);
}

static void test_registry(void) {
    sluice_entry *all = NULL;
    size_t n = 0;
    CHECK_OK(sluice_registry_list(reg, &all, &n));
    CHECK(n == 6); /* calc, echo, kv, locator, logging, math */
    const char *names[] = {"calc", "echo", "kv", "locator", "logging", "math"};
    for (size_t i = 0; i < n; i++) {
        CHECK(strcmp(all[i].name, names[i]) == 0);
        CHECK(all[i].online == 1);
        CHECK(strncmp(all[i].endpoints, "127.0.0.1:", 10) == 0);
    }
    CHECK(strncmp(all[0].origin, "attached by 127.0.0.1:", 22) == 0);
    CHECK(strcmp(all[1].origin, "local") == 0 && all[1].version == 1);
    CHECK(all[3].version == 3 && strcmp(all[3].endpoints, sluice_locator_server_endpoint(srv)) == 0);
    sluice_entries_free(all, n);
    sluice_entry *one = NULL;
    CHECK_RC(sluice_registry_get(reg, "ghost", &one), SLUICE_E_NOT_FOUND);
    CHECK(one == NULL);

    /* A service a client attaches: online, offline when it detaches, back
     * when it attaches again; offline too when its connection drops. */
    int from = calc_get(&chg.n);
    sluice_service_def *def = calc_def("svc2");
    sluice_attached *a = NULL;
    CHECK_OK(sluice_locator_attach(loc, def, (uint64_t)timeout_ms(), &a));
    CHECK(registry_online(reg, "svc2") == 1);
    WAIT_UNTIL(changes_has(&chg, from, "svc2 online"));
    /* The same name twice: refused by the Locator. */
    sluice_attached *dup = (sluice_attached *)1;
    CHECK_RC(sluice_locator_attach(loc, def, (uint64_t)timeout_ms(), &dup), SLUICE_E_SERVICE);
    CHECK(dup == NULL);
    CHECK_SERVICE_ERROR(10, 4, "service 'svc2' is already online");
    CHECK_OK(sluice_attached_detach(a));
    CHECK(sluice_attached_is_live(a) == 0);
    CHECK_OK(sluice_attached_detach(a));
    WAIT_UNTIL(registry_online(reg, "svc2") == 0);
    sluice_attached_free(a);
    WAIT_UNTIL(changes_has(&chg, from, "svc2 offline"));
    sluice_resolved *res = NULL;
    CHECK_RC(sluice_locator_resolve(loc, "svc2", (uint64_t)timeout_ms(), &res), SLUICE_E_NOT_FOUND);
    CHECK_OK(sluice_locator_attach(loc, def, (uint64_t)timeout_ms(), &a));
    CHECK(registry_online(reg, "svc2") == 1);
    sluice_service *svc = service("svc2");
    sluice_call *c = call(svc, "ping", NULL);
    const uint8_t *v;
    size_t len;
    CHECK_OK(sluice_call_value(c, (uint64_t)timeout_ms(), &v, &len));
    sluice_call_free(c);

    /* Its connection drops (the Locator server stops it from its side). */
    from = calc_get(&chg.n);
    sluice_locator_server *other = NULL;
    CHECK_OK(sluice_locator_server_bind("127.0.0.1:0", NULL, &other));
    sluice_locator *oloc = NULL;
    CHECK_OK(sluice_locator_new(sluice_locator_server_endpoint(other), &oloc));
    sluice_registry *oreg = NULL;
    CHECK_OK(sluice_locator_server_registry(other, &oreg));
    sluice_attached *b = NULL;
    CHECK_OK(sluice_locator_attach(oloc, def, (uint64_t)timeout_ms(), &b));
    CHECK(registry_online(oreg, "svc2") == 1);
    CHECK(sluice_locator_server_connections(other) == 1);
    /* A caller waiting on it through that Locator's proxy. */
    sluice_service *waiting = NULL;
    CHECK_OK(sluice_locator_service(oloc, "svc2", &waiting));
    c = call(waiting, "hold", NULL);
    sluice_responder *kept = NULL;
    WAIT_UNTIL((kept = take_kept()) != NULL);
    sluice_locator_server_free(other);
    WAIT_UNTIL(sluice_attached_is_live(b) == 0);
    CHECK(registry_online(oreg, "svc2") == 0);
    sluice_reply r;
    CHECK_RC(sluice_call_next(c, (uint64_t)timeout_ms(), &r), SLUICE_E_DISCONNECTED);
    CHECK(sluice_last_errno() != 0);
    CHECK(strncmp(sluice_last_error(), "connection lost (", 17) == 0);
    CHECK_RC(sluice_call_next(c, (uint64_t)timeout_ms(), &r), SLUICE_E_CLOSED);
    sluice_call_free(c);
    WAIT_UNTIL(sluice_service_state(waiting) == SLUICE_SERVICE_CLOSED); /* set just after the calls fail */
    sluice_service_free(waiting);
    /* Its connection is gone: the late answer goes nowhere. */
    CHECK_RC(sluice_responder_value(kept, NULL, 0), SLUICE_E_CLOSED);
    sluice_responder_free(kept);
    sluice_attached_free(b);
    sluice_registry_free(oreg);
    sluice_locator_free(oloc);

    sluice_service_free(svc);
    sluice_attached_free(a);
    sluice_service_def_free(def);
    WAIT_UNTIL(registry_online(reg, "svc2") == 0);
}

static void test_invoke(void) {
    /* Remote invocation: the call goes over calc's own Locator connection. */
    mp a = {0};
    mp_str(mp_array(&a, 1), "via registry");
    sluice_call *c = NULL;
    CHECK_OK(sluice_registry_invoke(reg, "calc", "ping", a.b, a.n, &c));
    const uint8_t *v;
    size_t n;
    CHECK_OK(sluice_call_value(c, (uint64_t)timeout_ms(), &v, &n));
    CHECK_TEXT(v, n, "[\"via registry\"]");
    sluice_call_free(c);
    mp two = {0};
    mp_uint(mp_array(&two, 1), 2);
    CHECK_OK(sluice_registry_invoke(reg, "calc", "count", two.b, two.n, &c));
    CHECK_OK(sluice_call_collect(c, (uint64_t)timeout_ms(), &v, &n));
    CHECK_TEXT(v, n, "[[\"write\", [0]], [\"write\", [1]], [\"close\", []]]");
    sluice_call_free(c);
    CHECK_OK(sluice_registry_invoke(reg, "calc", "fail", NULL, 0, &c));
    CHECK_RC(sluice_call_value(c, (uint64_t)timeout_ms(), &v, &n), SLUICE_E_SERVICE);
    CHECK_SERVICE_ERROR(42, 7, "failed on request");
    sluice_call_free(c);

    CHECK_RC(sluice_registry_invoke(reg, "calc", "nope", NULL, 0, &c), SLUICE_E_UNKNOWN_METHOD);
    CHECK_RC(sluice_registry_invoke(reg, "ghost", "ping", NULL, 0, &c), SLUICE_E_NOT_FOUND);
    CHECK_RC(sluice_registry_invoke(reg, "echo", "ping", NULL, 0, &c), SLUICE_E_NOT_FOUND);
    CHECK(strcmp(sluice_last_error(), "service 'echo (not attached by a client)' is not available") == 0);
}

static void test_hosted_and_published(void) {
    sluice_service_def *def = calc_def("hosted-calc");
    sluice_hosted *h = NULL;
    CHECK_OK(sluice_hosted_bind(def, "127.0.0.1:0", &h));
    sluice_service_def_free(def);
    CHECK(strncmp(sluice_hosted_endpoint(h), "127.0.0.1:", 10) == 0);
    sluice_publication *p = NULL;
    CHECK_OK(sluice_hosted_publish(h, loc, (uint64_t)timeout_ms(), &p));
    sluice_entry *e = NULL;
    CHECK_OK(sluice_registry_get(reg, "hosted-calc", &e));
    CHECK(e->online == 1 && strcmp(e->endpoints, sluice_hosted_endpoint(h)) == 0);
    CHECK(strncmp(e->origin, "published by ", 13) == 0);
    sluice_entries_free(e, 1);
    sluice_service *svc = service("hosted-calc");
    mp three = {0};
    mp_uint(mp_array(&three, 1), 3);
    sluice_call *c = call(svc, "count", &three);
    const uint8_t *v;
    size_t n;
    CHECK_OK(sluice_call_collect(c, (uint64_t)timeout_ms(), &v, &n));
    CHECK_TEXT(v, n, "[[\"write\", [0]], [\"write\", [1]], [\"write\", [2]], [\"close\", []]]");
    sluice_call_free(c);
    sluice_publication_free(p);
    WAIT_UNTIL(registry_online(reg, "hosted-calc") == 0);

    /* Registered in-process instead. */
    CHECK_OK(sluice_registry_add_hosted(reg, h));
    CHECK_OK(sluice_registry_get(reg, "hosted-calc", &e));
    CHECK(e->online == 1 && strcmp(e->origin, "local") == 0);
    sluice_entries_free(e, 1);
    c = call(svc, "fail", NULL);
    CHECK_RC(sluice_call_value(c, (uint64_t)timeout_ms(), &v, &n), SLUICE_E_SERVICE);
    sluice_call_free(c);
    /* The hosted service stops: the open connection ends. */
    sluice_hosted_free(h);
    sluice_reply r;
    c = NULL;
    int rc = sluice_service_call(svc, "ping", NULL, 0, (uint64_t)timeout_ms(), &c);
    if (rc == SLUICE_OK) {
        rc = sluice_call_next(c, (uint64_t)timeout_ms(), &r);
        CHECK_RC(rc, SLUICE_E_DISCONNECTED);
        sluice_call_free(c);
    } else {
        CHECK_RC(rc, SLUICE_E_IO);
    }
    sluice_service_free(svc);
}

static void test_misuse(void) {
    CHECK_RC(sluice_locator_new("127.0.0.1:1,not an endpoint", &(sluice_locator *){0}), SLUICE_E_INVALID);
    CHECK_RC(sluice_locator_new(NULL, NULL), SLUICE_E_NULL);
    sluice_locator *dflt = NULL;
    CHECK_OK(sluice_locator_new(NULL, &dflt));
    sluice_locator_free(dflt);
    CHECK_RC(sluice_locator_resolve(NULL, "x", 0, &(sluice_resolved *){0}), SLUICE_E_NULL);
    CHECK_RC(sluice_service_call(NULL, "x", NULL, 0, 0, &(sluice_call *){0}), SLUICE_E_NULL);
    CHECK_RC(sluice_call_next(NULL, 0, &(sluice_reply){0}), SLUICE_E_NULL);
    CHECK_RC(sluice_responder_value(NULL, NULL, 0), SLUICE_E_NULL);
    CHECK(sluice_service_state(NULL) == -1);
    CHECK(sluice_resolved_name(NULL) == NULL && sluice_resolved_method_count(NULL) == 0);
    sluice_service_def *def = NULL;
    CHECK_RC(sluice_service_def_new("", 1, &def), SLUICE_E_INVALID);
    CHECK_OK(sluice_service_def_new("m", 1, &def));
    sluice_handler h = {sizeof h, calc_call, NULL};
    CHECK_RC(sluice_service_def_add(def, "x", 7, &h, NULL), SLUICE_E_INVALID);
    CHECK_RC(sluice_service_def_add(def, "x", SLUICE_METHOD_PRIMITIVE, NULL, NULL), SLUICE_E_NULL);
    sluice_handler small = {2, NULL, NULL};
    CHECK_RC(sluice_service_def_add(def, "x", SLUICE_METHOD_PRIMITIVE, &small, NULL), SLUICE_E_INVALID);
    CHECK_OK(sluice_service_def_add(def, "x", SLUICE_METHOD_PRIMITIVE, &h, NULL));
    CHECK_RC(sluice_service_def_add(def, "x", SLUICE_METHOD_STREAMING, &h, NULL), SLUICE_E_INVALID);
    CHECK_RC(sluice_hosted_bind(def, "nowhere", &(sluice_hosted *){0}), SLUICE_E_INVALID);
    sluice_service_def_free(def);
    CHECK_RC(sluice_locator_server_add_demo(srv, 17), SLUICE_E_INVALID);
    char small_buf[4];
    size_t len = 0;
    CHECK_RC(sluice_msgpack_text((const uint8_t *)"\x92\x01\x02", 3, small_buf, sizeof small_buf, &len), SLUICE_E_BUFFER);
    CHECK(len == 6 && strcmp(small_buf, "[1,") == 0);
    CHECK_RC(sluice_msgpack_text((const uint8_t *)"\x92\x01", 2, small_buf, sizeof small_buf, &len), SLUICE_E_INVALID);
    /* A Locator server on a port in use. */
    const char *ep = sluice_locator_server_endpoint(srv);
    sluice_locator_server *clash = (sluice_locator_server *)1;
    CHECK_RC(sluice_locator_server_bind(ep, NULL, &clash), SLUICE_E_IO);
    CHECK(clash == NULL);
    /* Every _free takes NULL. */
    sluice_locator_free(NULL);
    sluice_resolved_free(NULL);
    sluice_service_free(NULL);
    sluice_call_free(NULL);
    sluice_logger_free(NULL);
    sluice_service_def_free(NULL);
    sluice_responder_free(NULL);
    sluice_attached_free(NULL);
    sluice_hosted_free(NULL);
    sluice_publication_free(NULL);
    sluice_registry_free(NULL);
    sluice_entries_free(NULL, 0);
    sluice_locator_server_free(NULL);
}

static void teardown(void) {
    sluice_attached_free(calc_att);
    sluice_locator_free(loc);
    sluice_registry_free(reg);
    sluice_locator_server_free(srv);
    /* Every handler copy is gone once the connections have wound down. */
    int64_t end = now_ms() + timeout_ms();
    while (calc_get(&calc.released) < 7 * 3 || calc_get(&chg.released) < 1) {
        if (now_ms() > end)
            FAILF("released %d handlers (want 21) and %d registry callbacks (want 1)", calc_get(&calc.released),
                  calc_get(&chg.released));
        sleep_ms(5);
    }
}

int main(void) {
    RUN(setup);
    RUN(test_resolve);
    RUN(test_primitive_and_streaming);
    RUN(test_service_errors);
    RUN(test_handler_threads);
    RUN(test_failover);
    RUN(test_logger_verbosity);
    RUN(test_demo_services);
    RUN(test_registry);
    RUN(test_invoke);
    RUN(test_hosted_and_published);
    RUN(test_misuse);
    RUN(teardown);
    return 0;
}
