// The header compiles as C++ (its extern "C" guards) with warnings as
// errors, and its functions link and run from C++.
#include <sluice.h>

#include <cstdio>
#include <cstring>

namespace {

struct Counter {
    int released = 0;
};

extern "C" void on_release(void *ud) { static_cast<Counter *>(ud)->released++; }

int fail(const char *what) {
    std::fprintf(stderr, "FAIL test_cxx: %s (last error: %s)\n", what, sluice_last_error());
    return 1;
}

}  // namespace

int main() {
    char want[32];
    std::snprintf(want, sizeof want, "%d.%d.%d", SLUICE_VERSION_MAJOR, SLUICE_VERSION_MINOR, SLUICE_VERSION_PATCH);
    if (std::strcmp(sluice_version(), want) != 0) return fail("version");
    if (std::strcmp(sluice_result_name(SLUICE_E_CLOSED), "SLUICE_E_CLOSED") != 0) return fail("result name");

    sluice_options *opts = sluice_options_new();
    if (sluice_options_set_dialect(opts, SLUICE_DIALECT_V0) != SLUICE_OK) return fail("set dialect");
    sluice_callbacks cbs = sluice_callbacks();
    Counter counter;
    cbs.on_release = on_release;
    sluice_channel *ch = nullptr;
    if (sluice_channel_connect("bad endpoint", opts, &cbs, &counter, &ch) != SLUICE_E_INVALID) return fail("bad endpoint");
    if (ch != nullptr || counter.released != 0) return fail("no channel, no release on failure");
    sluice_options_free(opts);
    sluice_channel_free(nullptr);
    std::printf("ok - test_cxx\n");
    return 0;
}
