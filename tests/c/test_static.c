/*
 * The same library linked statically (libsluice.a plus pkg-config's
 * Libs.private): the version matches the header, and a worker and an
 * engine, both sluice, exchange a handshake over TCP.
 */
#include "harness.h"

static void test_static_library_works(void) {
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", SLUICE_VERSION_MAJOR, SLUICE_VERSION_MINOR, SLUICE_VERSION_PATCH);
    CHECK(strcmp(sluice_version(), want) == 0);

    rec engine;
    rec_init(&engine);
    acceptor a;
    acceptor_init(&a, &engine, 1);
    sluice_server *srv = NULL;
    CHECK_OK(sluice_server_bind("127.0.0.1:0", NULL, &ACCEPT_CALLBACKS, &a, &srv));
    char ep[64];
    CHECK_OK(sluice_server_endpoint(srv, ep, sizeof ep, NULL));

    rec worker;
    rec_init(&worker);
    sluice_channel *ch = NULL;
    CHECK_OK(sluice_channel_connect(ep, NULL, &REC_CALLBACKS, &worker, &ch));
    CHECK_OK(sluice_channel_send_handshake(ch, (const uint8_t *)"static", 6));
    const char *want_engine[] = {"connect", "handshake \"static\""};
    rec_expect_from(&engine, 0, want_engine, 2);

    sluice_channel_free(ch);
    sluice_channel_free(acceptor_wait(&a, 0));
    sluice_server_free(srv);
    rec_wait_released(&worker);
    rec_wait_released(&engine);
    acceptor_wait_released(&a);
    rec_destroy(&worker);
    rec_destroy(&engine);
    acceptor_destroy(&a);
}

int main(void) {
    RUN(test_static_library_works);
    return 0;
}
