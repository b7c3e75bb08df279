/*
 * The C boundary under misuse, beyond test_api.c: freeing another channel
 * from inside a callback, creating and freeing channels from inside
 * callbacks, sending from on_socket_error, the limit options with NULL and
 * invalid values, and a hostile peer held by the frame timeout. Every case
 * has the result the header documents; run under valgrind by run.sh.
 */
#include "harness.h"
#include <sys/wait.h>

/* ---- a callback that frees another channel ---------------------------- */

typedef struct {
    rec r;
    sluice_channel *victim; /* freed from inside on_heartbeat */
    int freed;
} killer;

static void killer_heartbeat(void *ud, sluice_channel *ch) {
    killer *k = ud;
    rec_seen(&k->r, ch);
    rec_add(&k->r, "heartbeat");
    if (k->victim) {
        sluice_channel_free(k->victim);
        k->victim = NULL;
        __atomic_store_n(&k->freed, 1, __ATOMIC_SEQ_CST);
    }
}

static void killer_release(void *ud) {
    killer *k = ud;
    pthread_mutex_lock(&k->r.mu);
    k->r.released++;
    pthread_cond_broadcast(&k->r.cv);
    pthread_mutex_unlock(&k->r.mu);
}

static void test_free_another_channel_inside_a_callback(void) {
    /* Two workers on one server: worker A's on_heartbeat frees worker B.
     * B gets on_release once and no other callback after; A goes on. */
    rec er[2];
    rec_init(&er[0]);
    rec_init(&er[1]);
    acceptor acc;
    acceptor_init(&acc, er, 2);
    sluice_server *srv;
    CHECK_OK(sluice_server_bind("127.0.0.1:0", NULL, &ACCEPT_CALLBACKS, &acc, &srv));
    char ep[64];
    CHECK_OK(sluice_server_endpoint(srv, ep, sizeof ep, NULL));

    killer a;
    memset(&a, 0, sizeof a);
    rec_init(&a.r);
    sluice_callbacks kcb = REC_CALLBACKS;
    kcb.on_heartbeat = killer_heartbeat;
    kcb.on_release = killer_release;
    rec b;
    rec_init(&b);
    sluice_channel *wa, *wb;
    CHECK_OK(sluice_channel_connect(ep, NULL, &REC_CALLBACKS, &b, &wb));
    sluice_channel *eb = acceptor_wait(&acc, 0);
    CHECK_OK(sluice_channel_connect(ep, NULL, &kcb, &a, &wa));
    sluice_channel *ea = acceptor_wait(&acc, 1);
    rec_wait_lines(&b, 1);
    a.victim = wb;
    CHECK_OK(sluice_channel_send_heartbeat(ea));
    rec_wait_released(&b);
    CHECK(__atomic_load_n(&a.freed, __ATOMIC_SEQ_CST) == 1);
    /* B's engine sees the end; A still talks. */
    rec_wait_int(&er[0], &er[0].socket_errors, 1, "B's engine socket errors");
    CHECK_OK(sluice_channel_send_heartbeat(ea));
    rec_wait_lines(&a.r, 3);
    CHECK(strcmp(a.r.lines[2], "heartbeat") == 0);
    CHECK(b.socket_errors == 0); /* freed, not failed: no on_socket_error */
    rec_expect_quiet(&b, 1, 50);

    sluice_channel_free(wa);
    sluice_channel_free(ea);
    sluice_channel_free(eb);
    sluice_server_free(srv);
    rec_wait_released(&a.r);
    rec_wait_released(&er[0]);
    rec_wait_released(&er[1]);
    acceptor_wait_released(&acc);
    rec_destroy(&a.r);
    rec_destroy(&b);
    rec_destroy(&er[0]);
    rec_destroy(&er[1]);
    acceptor_destroy(&acc);
}

/* ---- channels created and freed from inside callbacks ----------------- */

typedef struct {
    rec r;
    char ep[64];
    rec child_rec;
    sluice_channel *child;
    int connect_rc;
    int send_rc_after_error;
} parent;

static void parent_connect(void *ud, sluice_channel *ch) {
    parent *p = ud;
    rec_seen(&p->r, ch);
    /* A new connection made from an I/O thread. */
    p->connect_rc = sluice_channel_connect(p->ep, NULL, &REC_CALLBACKS, &p->child_rec, &p->child);
    rec_add(&p->r, "connect");
}

static void parent_socket_error(void *ud, sluice_channel *ch, int err) {
    parent *p = ud;
    /* Sends from on_socket_error are refused: the channel is over. */
    p->send_rc_after_error = sluice_channel_send_heartbeat(ch);
    /* The child goes too, from inside this callback. */
    sluice_channel_free(p->child);
    p->child = NULL;
    cb_socket_error(&p->r, ch, err);
    sluice_channel_free(ch);
}

static void parent_release(void *ud) {
    parent *p = ud;
    pthread_mutex_lock(&p->r.mu);
    p->r.released++;
    pthread_cond_broadcast(&p->r.cv);
    pthread_mutex_unlock(&p->r.mu);
}

static void test_connect_and_free_inside_callbacks(void) {
    rec er[2];
    rec_init(&er[0]);
    rec_init(&er[1]);
    acceptor acc;
    acceptor_init(&acc, er, 2);
    sluice_server *srv;
    CHECK_OK(sluice_server_bind("127.0.0.1:0", NULL, &ACCEPT_CALLBACKS, &acc, &srv));
    parent *p = calloc(1, sizeof *p);
    rec_init(&p->r);
    rec_init(&p->child_rec);
    p->connect_rc = -1;
    CHECK_OK(sluice_server_endpoint(srv, p->ep, sizeof p->ep, NULL));
    sluice_callbacks cb = REC_CALLBACKS;
    cb.on_connect = parent_connect;
    cb.on_socket_error = parent_socket_error;
    cb.on_release = parent_release;
    sluice_channel *ch;
    CHECK_OK(sluice_channel_connect(p->ep, NULL, &cb, p, &ch));
    sluice_channel *e0 = acceptor_wait(&acc, 0);
    sluice_channel *e1 = acceptor_wait(&acc, 1);
    rec_wait_lines(&p->r, 1);
    CHECK(p->connect_rc == SLUICE_OK);
    rec_wait_lines(&p->child_rec, 1); /* the child connected */
    /* The server side ends the parent's connection: its on_socket_error
     * sends (refused), frees the child and then itself. */
    sluice_channel_free(e0);
    sluice_channel_free(e1);
    rec_wait_released(&p->r);
    rec_wait_released(&p->child_rec);
    CHECK(p->r.socket_errors == 1);
    CHECK(p->send_rc_after_error == SLUICE_E_CLOSED);
    sluice_server_free(srv);
    rec_wait_released(&er[0]);
    rec_wait_released(&er[1]);
    acceptor_wait_released(&acc);
    rec_destroy(&p->r);
    rec_destroy(&p->child_rec);
    free(p);
    rec_destroy(&er[0]);
    rec_destroy(&er[1]);
    acceptor_destroy(&acc);
}

/* ---- the limit options ------------------------------------------------- */

static void test_limit_options(void) {
    CHECK_RC(sluice_options_set_frame_timeout_ms(NULL, 1), SLUICE_E_NULL);
    CHECK_RC(sluice_options_set_read_idle_timeout_ms(NULL, 1), SLUICE_E_NULL);
    CHECK_RC(sluice_options_set_max_sessions(NULL, 1), SLUICE_E_NULL);
    sluice_options *o = sluice_options_new();
    CHECK_RC(sluice_options_set_max_sessions(o, 0), SLUICE_E_INVALID);
    CHECK_OK(sluice_options_set_max_sessions(o, 3));
    CHECK_OK(sluice_options_set_frame_timeout_ms(o, 0));
    CHECK_OK(sluice_options_set_read_idle_timeout_ms(o, 0));
    sluice_options_free(o);
}

/* A peer that declares a large frame and dribbles it: the frame timeout
 * ends the connection with SLUICE_ETIMEDOUT, once. */
static void test_frame_timeout_holds_a_dribbling_peer(void) {
    uint16_t port;
    int l = tcp_listen(&port, 1);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%u", port);
    sluice_options *o = opts_make(SLUICE_DIALECT_V1, SLUICE_ROLE_WORKER);
    CHECK_OK(sluice_options_set_frame_timeout_ms(o, 300));
    rec r;
    rec_init(&r);
    sluice_channel *ch;
    CHECK_OK(sluice_channel_connect(ep, o, &REC_CALLBACKS, &r, &ch));
    sluice_options_free(o);
    int fd = tcp_accept(l);
    /* [2, 0, [bin32 of 1 MiB ... */
    const uint8_t head[] = {0x94, 0x02, 0x00, 0x91, 0xc6, 0x00, 0x10, 0x00, 0x00};
    write_all(fd, head, sizeof head);
    for (int i = 0; i < 100 && !__atomic_load_n(&r.socket_errors, __ATOMIC_SEQ_CST); i++) {
        write_all(fd, (const uint8_t *)"x", 1);
        sleep_ms(100);
    }
    rec_wait_int(&r, &r.socket_errors, 1, "socket errors");
    CHECK(r.last_errno == SLUICE_ETIMEDOUT);
    const char *want[] = {"connect", "socket_error 110"};
    rec_expect_from(&r, 0, want, 2);
    sluice_channel_free(ch);
    rec_wait_released(&r);
    rec_expect_quiet(&r, 2, 50);
    rec_destroy(&r);
    close(fd);
    close(l);
}

/* A pointer that is not a channel is refused with SLUICE_E_HANDLE; a
 * channel made before fork() is refused in the child with SLUICE_E_FORKED
 * (and freeing it there does nothing), while the parent goes on using it. */
static void test_foreign_and_inherited_handles(void) {
    /* Memory that is not a sluice handle, larger than any handle. */
    static uint64_t foreign[64];
    sluice_channel *bogus = (sluice_channel *)foreign;
    CHECK_RC(sluice_channel_send_heartbeat(bogus), SLUICE_E_HANDLE);
    CHECK(strcmp(sluice_result_name(SLUICE_E_HANDLE), "SLUICE_E_HANDLE") == 0);
    CHECK(sluice_channel_fd(bogus) == -1);
    sluice_channel_free(bogus); /* not freed: not ours */

    uint16_t port;
    int l = tcp_listen(&port, 1);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%u", port);
    sluice_options *o = opts_make(SLUICE_DIALECT_V1, SLUICE_ROLE_WORKER);
    rec r;
    rec_init(&r);
    sluice_channel *ch;
    CHECK_OK(sluice_channel_connect(ep, o, &REC_CALLBACKS, &r, &ch));
    sluice_options_free(o);
    int fd = tcp_accept(l);
    rec_wait_lines(&r, 1); /* connect */
    pid_t pid = fork();
    if (pid == 0) {
        int ok = sluice_channel_send_heartbeat(ch) == SLUICE_E_FORKED &&
                 strcmp(sluice_result_name(SLUICE_E_FORKED), "SLUICE_E_FORKED") == 0;
        sluice_channel_free(ch); /* the parent's: left alone */
        /* exec rather than exit: under valgrind a forked child's exit would
         * count the parent's threads' memory as its leaks. */
        execl(ok ? "/bin/true" : "/bin/false", "status", (char *)NULL);
        _exit(2);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The parent's channel still works: a heartbeat reaches the peer. */
    CHECK_OK(sluice_channel_send_heartbeat(ch));
    uint8_t got[8];
    CHECK(read(fd, got, 1) == 1 && (got[0] == 0x93 || got[0] == 0x94));
    sluice_channel_free(ch);
    rec_wait_released(&r);
    rec_destroy(&r);
    close(fd);
    close(l);
}

int main(void) {
    RUN(test_limit_options);
    RUN(test_free_another_channel_inside_a_callback);
    RUN(test_connect_and_free_inside_callbacks);
    RUN(test_frame_timeout_holds_a_dribbling_peer);
    RUN(test_foreign_and_inherited_handles);
    return 0;
}
