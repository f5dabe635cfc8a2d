// Helpers shared by the GoogleTest suites.
#ifndef YP_TEST_UTIL_H
#define YP_TEST_UTIL_H

#include <csignal>
#include <cstring>

#include <sys/resource.h>

#include "yprof/format.h"

// One event, padding zeroed.
inline yp_event E(uint64_t ts, uint32_t id, uint8_t kind) {
    yp_event e;
    memset(&e, 0, sizeof e);
    e.ts = ts;
    e.func_id = id;
    e.kind = kind;
    return e;
}

// Files this process writes may grow to `bytes` at most while this lives
// (RLIMIT_FSIZE, SIGXFSZ ignored: a write past it fails with EFBIG), as on
// a full disk; the limit and the signal's action come back after.
class FileSizeLimit {
  public:
    explicit FileSizeLimit(rlim_t bytes) {
        getrlimit(RLIMIT_FSIZE, &old_);
        old_sig_ = signal(SIGXFSZ, SIG_IGN);
        struct rlimit r = old_;
        r.rlim_cur = bytes;
        setrlimit(RLIMIT_FSIZE, &r);
    }
    ~FileSizeLimit() {
        setrlimit(RLIMIT_FSIZE, &old_);
        signal(SIGXFSZ, old_sig_);
    }
    FileSizeLimit(const FileSizeLimit &) = delete;
    FileSizeLimit &operator=(const FileSizeLimit &) = delete;

  private:
    struct rlimit old_;
    void (*old_sig_)(int);
};

#endif
