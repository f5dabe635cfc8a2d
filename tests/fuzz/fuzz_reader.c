/*
 * fuzz_reader.c — libFuzzer target for the analyzer's whole input path:
 * header, chunk framing, zstd, event decoding, aggregation, snapshot.
 * Built with -fsanitize=fuzzer by -DYP_FUZZ=ON; replay_main.c replays the
 * corpus without libFuzzer in plain CTest.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "yprof/analyze.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    yp_agg *a = yp_agg_new();
    if (!a) return 0;
    yp_load_result res;
    char err[256];
    if (yp_load_mem(data, size, a, &res, err, sizeof err) == YP_OK) {
        yp_stats *s = yp_agg_snapshot(a);
        if (s) {
            size_t n;
            yp_fstat *t = yp_stats_totals(s, UINT32_MAX, YP_SORT_SELF, &n);
            free(t);
        }
        yp_stats_free(s);
    }
    yp_agg_free(a);
    return 0;
}
