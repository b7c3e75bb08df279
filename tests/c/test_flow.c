/*
 * Flow control: a peer that stops reading makes sends return
 * SLUICE_E_WOULD_BLOCK, on_drain follows once it reads again, and memory
 * stays bounded however often the program retries. In poll mode, a peer
 * that floods a channel nobody dispatches is held back by the kernel once
 * max_pending bytes wait.
 */
#include "harness.h"

#define CHUNK (64 * 1024)

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

typedef struct {
    int fd;
    size_t total;
} reader;

static void *read_all(void *arg) {
    reader *r = arg;
    uint8_t *buf = malloc(1 << 20);
    for (;;) {
        ssize_t k = recv(r->fd, buf, 1 << 20, 0);
        if (k <= 0) break;
        r->total += (size_t)k;
    }
    free(buf);
    return NULL;
}

static void test_would_block_then_drain(void) {
    uint16_t port;
    int l = tcp_listen(&port, 8);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%u", port);
    sluice_options *o = sluice_options_new();
    CHECK_OK(sluice_options_set_watermarks(o, 1 << 20, 256 << 10));
    rec r;
    rec_init(&r);
    sluice_channel *ch = NULL;
    CHECK_OK(sluice_channel_connect(ep, o, &REC_CALLBACKS, &r, &ch));
    sluice_options_free(o);
    int peer = tcp_accept(l);
    const char *c[] = {"connect"};
    rec_expect_from(&r, 0, c, 1);

    uint8_t *chunk = malloc(CHUNK);
    memset(chunk, 7, CHUNK);
    /* Fill the kernel's socket buffers and then our queue: sends are
     * refused for good once both are full (while the kernel still takes
     * bytes the queue drains, and on_drain may come). */
    size_t sent = 0;
    int refused = 0;
    while (refused < 40) {
        int rc = sluice_channel_send_chunk(ch, 2, chunk, CHUNK);
        if (rc == SLUICE_E_WOULD_BLOCK) {
            refused++;
            sleep_ms(5);
            continue;
        }
        CHECK_OK(rc);
        refused = 0;
        sent++;
        if (sent > 10000) FAILF("the queue never filled");
    }
    CHECK(strstr(sluice_last_error(), "would block") != NULL);
    size_t queued = 0;
    CHECK_OK(sluice_channel_queued(ch, &queued));
    CHECK(queued >= (1 << 20) && queued <= (1 << 20) + CHUNK + 16);
    pthread_mutex_lock(&r.mu);
    int drains = r.drains;
    pthread_mutex_unlock(&r.mu);

    /* Retrying does not grow anything: the queue and the process stay put. */
    long before = rss_kib();
    for (int i = 0; i < 5000; i++) CHECK_RC(sluice_channel_send_chunk(ch, 2, chunk, CHUNK), SLUICE_E_WOULD_BLOCK);
    long after = rss_kib();
    size_t queued2 = 0;
    CHECK_OK(sluice_channel_queued(ch, &queued2));
    CHECK(queued2 == queued);
    /* Unbounded, 5000 refused 64 KiB sends would be 320 MiB. Valgrind holds
     * freed blocks back for a while (--freelist-vol, 20 MB): allow for it. */
    long limit = under_valgrind() ? 64 * 1024 : 16 * 1024;
    if (after - before > limit) FAILF("RSS grew by %ld KiB while sends were refused", after - before);
    sleep_ms(50);
    CHECK(r.drains == drains); /* no drain before the peer reads */

    /* The peer reads: drain comes, and sends are accepted again. */
    reader rd = {peer, 0};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, read_all, &rd) == 0);
    rec_wait_int(&r, &r.drains, drains + 1, "drains");
    CHECK_OK(sluice_channel_send_chunk(ch, 2, chunk, CHUNK));
    sent++;
    CHECK_OK(sluice_channel_close(ch));
    pthread_join(t, NULL);
    /* Every accepted chunk was written before the close: a 64 KiB chunk's
     * frame is 9 bytes of header (93 02 00 91 db + 4 length bytes) + data. */
    CHECK(rd.total == sent * (CHUNK + 9));
    CHECK(r.drains == drains + 1);
    free(chunk);
    sluice_channel_free(ch);
    rec_wait_released(&r);
    rec_destroy(&r);
    close(peer);
    close(l);
}

/* Poll mode, nobody dispatching: reading pauses once max_pending payload
 * bytes wait, so the flooding peer is stopped by TCP, and everything
 * arrives once the host dispatches. */
static void test_poll_mode_pauses_reading(void) {
    uint16_t port;
    int l = tcp_listen(&port, 8);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%u", port);
    sluice_options *o = sluice_options_new();
    CHECK_OK(sluice_options_set_delivery(o, SLUICE_DELIVERY_POLL));
    CHECK_OK(sluice_options_set_max_pending(o, 1 << 20));
    rec r;
    rec_init(&r);
    sluice_channel *ch = NULL;
    CHECK_OK(sluice_channel_connect(ep, o, &REC_CALLBACKS, &r, &ch));
    sluice_options_free(o);
    int peer = tcp_accept(l);
    int fd = sluice_channel_fd(ch);
    CHECK(fd >= 0);

    uint8_t frame[9 + CHUNK];
    size_t h = hex_decode("93020091 db00010000", frame, 9);
    memset(frame + h, 'z', CHUNK);
    uint8_t inv[16];
    size_t hi = hex_decode("93020091a470696e67", inv, sizeof inv);
    write_all(peer, inv, hi);
    fcntl(peer, F_SETFL, fcntl(peer, F_GETFL) | O_NONBLOCK);
    size_t written = 0;
    int64_t quiet_since = now_ms();
    long before = rss_kib();
    while (now_ms() - quiet_since < 300) {
        ssize_t k = send(peer, frame + written % sizeof frame, sizeof frame - written % sizeof frame, MSG_NOSIGNAL);
        if (k > 0) {
            written += (size_t)k;
            quiet_since = now_ms();
            if (written > (size_t)256 << 20) FAILF("the peer wrote 256 MiB: reading never paused");
        } else {
            CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
            usleep(1000);
        }
    }
    long after = rss_kib();
    if (after - before > 64 * 1024) FAILF("RSS grew by %ld KiB while nobody dispatched", after - before);
    /* Finish the frame in flight, then dispatch everything. */
    fcntl(peer, F_SETFL, fcntl(peer, F_GETFL) & ~O_NONBLOCK);
    size_t tail = (sizeof frame - written % sizeof frame) % sizeof frame;
    size_t frames = (written + tail) / sizeof frame;
    size_t sent_tail = 0;
    int64_t end = now_ms() + timeout_ms();
    while ((size_t)r.chunk_bytes < frames * CHUNK) {
        if (now_ms() > end) FAILF("dispatched %d of %zu bytes", r.chunk_bytes, frames * CHUNK);
        if (sent_tail < tail) {
            fcntl(peer, F_SETFL, fcntl(peer, F_GETFL) | O_NONBLOCK);
            ssize_t k = send(peer, frame + sizeof frame - tail + sent_tail, tail - sent_tail, MSG_NOSIGNAL);
            if (k > 0) sent_tail += (size_t)k;
        }
        if (wait_readable(fd, 10)) CHECK_OK(sluice_channel_dispatch(ch, 64, NULL));
    }
    CHECK(r.chunk_bytes == (int)(frames * CHUNK));
    printf("# %zu MiB written by the peer before it was held back\n", written >> 20);
    close(peer);
    close(l);
    sluice_channel_free(ch);
    rec_wait_released(&r);
    rec_destroy(&r);
}

int main(void) {
    RUN(test_would_block_then_drain);
    RUN(test_poll_mode_pauses_reading);
    return 0;
}
