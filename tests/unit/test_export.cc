// Each exporter's output parsed back.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "yp_test_util.h"
#include "yp_pb_int.h"
#include "yprof/analyze.h"

namespace {

std::string tmp(const char *n) {
    return std::string(::testing::TempDir()) + "yp_exp_" + std::to_string(getpid()) + n;
}

std::string read_all(const std::string &p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

size_t count(const std::string &s, const std::string &needle) {
    size_t n = 0;
    for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) n++;
    return n;
}

// main -> (a -> b) x2, main -> b; times in microseconds (1 tick = 1 us)
const std::vector<yp_event> kEvents = {
    E(0, 1, YP_EV_CALL),    E(10, 2, YP_EV_CALL), E(15, 3, YP_EV_CALL),   E(35, 3, YP_EV_RETURN),
    E(40, 2, YP_EV_RETURN), E(50, 2, YP_EV_CALL), E(55, 3, YP_EV_CALL),   E(60, 3, YP_EV_RETURN),
    E(70, 2, YP_EV_RETURN), E(80, 3, YP_EV_CALL), E(95, 3, YP_EV_RETURN), E(100, 1, YP_EV_RETURN)};

struct Fixture {
    std::string trace = tmp(".yp");
    yp_stats *s = nullptr;
    Fixture() {
        yp_writer_options o{};
        o.ns_per_tick = 1000.0;
        yp_writer *w;
        EXPECT_EQ(yp_writer_open(trace.c_str(), &o, &w, nullptr, 0), YP_OK);
        yp_symbol syms[3] = {{1, 1, 0, "main", "app", "/app.py"},
                             {2, 5, 0, "Obj.a", "app", "/app.py"},
                             {3, 0, 1, "list.append", "builtins", ""}};
        yp_writer_symbols(w, syms, 3);
        yp_thread_info t{1, 5, 6, 0, "MainThread"};
        yp_writer_threads(w, &t, 1);
        yp_writer_events(w, 1, kEvents.data(), kEvents.size(), 0);
        yp_footer f{};
        yp_writer_close(w, &f);
        yp_agg *a = yp_agg_new();
        yp_load_result res;
        char err[256];
        EXPECT_EQ(yp_load_trace(trace.c_str(), a, &res, err, sizeof err, nullptr), YP_OK);
        s = yp_agg_snapshot(a);
        yp_stats_set_session(s, trace.c_str(), &res);
        yp_agg_free(a);
    }
    ~Fixture() {
        yp_stats_free(s);
        remove(trace.c_str());
    }
};

TEST(Export, CollapsedStacksSumToTotalTime) {
    Fixture fx;
    std::string p = tmp(".folded");
    ASSERT_EQ(yp_export_collapsed(fx.s, p.c_str()), YP_OK);
    std::istringstream in(read_all(p));
    std::string line;
    long long sum = 0;
    int lines = 0;
    bool saw_nested = false;
    while (std::getline(in, line)) {
        size_t sp = line.rfind(' ');
        ASSERT_NE(sp, std::string::npos);
        sum += std::stoll(line.substr(sp + 1));
        saw_nested |= line.rfind("MainThread;main (app.py:1);Obj.a (app.py:5);list.append", 0) == 0;
        lines++;
    }
    EXPECT_EQ(sum, 100); // main's inclusive time, in us
    EXPECT_TRUE(saw_nested);
    EXPECT_EQ(lines, 4); // main, main;a, main;a;append, main;append
    remove(p.c_str());
}

TEST(Export, CallgrindHasFunctionsAndCalls) {
    Fixture fx;
    std::string p = tmp(".callgrind");
    ASSERT_EQ(yp_export_callgrind(fx.s, p.c_str()), YP_OK);
    std::string t = read_all(p);
    EXPECT_EQ(t.rfind("# callgrind format", 0), 0u);
    EXPECT_EQ(count(t, "\nfn="), 3u);
    EXPECT_NE(t.find("cfn=Obj.a\ncalls=2 5\n"), std::string::npos) << t;
    EXPECT_NE(t.find("cfn=list.append\ncalls=2 0\n"), std::string::npos) << t;
    remove(p.c_str());
}

TEST(Export, FlamegraphIsSelfContainedSvg) {
    Fixture fx;
    std::string p = tmp(".svg");
    ASSERT_EQ(yp_export_flamegraph(fx.s, p.c_str()), YP_OK);
    std::string t = read_all(p);
    EXPECT_NE(t.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
    EXPECT_EQ(count(t, "<g class=\"f\""), count(t, "</g>"));
    EXPECT_EQ(count(t, "<title>"), 5u);               // the thread's root and 4 call paths
    EXPECT_EQ(count(t, "data-n=\"MainThread\""), 1u); // the root, labelled
    EXPECT_NE(t.find("data-x=\"0.000000000\" data-w=\"1.000000000\" data-d=\"0\""), std::string::npos);
    EXPECT_EQ(t.find("http://", t.find("<svg") + 50), std::string::npos); // nothing fetched
    EXPECT_NE(t.find("</svg>"), std::string::npos);
    remove(p.c_str());
}

TEST(Export, ChromeTraceHasOneCompleteEventPerCall) {
    Fixture fx;
    std::string p = tmp(".json");
    char err[256];
    ASSERT_EQ(yp_export_chrome(fx.trace.c_str(), fx.s, p.c_str(), nullptr, err, sizeof err), YP_OK) << err;
    std::string t = read_all(p);
    EXPECT_EQ(count(t, "\"ph\":\"X\""), 6u);
    EXPECT_NE(t.find("\"name\":\"thread_name\",\"args\":{\"name\":\"MainThread\"}"), std::string::npos);
    EXPECT_NE(t.find("\"ts\":0.000,\"dur\":100.000,\"name\":\"main\""), std::string::npos);
    EXPECT_NE(t.find("\"ts\":80.000,\"dur\":15.000,\"name\":\"list.append\""), std::string::npos);
    EXPECT_EQ(t.substr(t.size() - 4), "\n]}\n");
    remove(p.c_str());
}

TEST(Export, ChromeWindowMinimumDurationAndSizeLimit) {
    Fixture fx;
    std::string p = tmp(".json");
    char err[256];
    // [40 us, 60 us): the calls overlapping it, cut to it
    yp_timeline_opts w = {40e-6, 60e-6, 0, UINT32_MAX, 0};
    ASSERT_EQ(yp_export_chrome(fx.trace.c_str(), fx.s, p.c_str(), &w, err, sizeof err), YP_OK) << err;
    std::string t = read_all(p);
    EXPECT_EQ(count(t, "\"ph\":\"X\""), 3u);
    EXPECT_NE(t.find("\"ts\":40.000,\"dur\":20.000,\"name\":\"main\""), std::string::npos);
    EXPECT_NE(t.find("\"ts\":50.000,\"dur\":10.000,\"name\":\"Obj.a\""), std::string::npos);
    EXPECT_NE(t.find("\"ts\":55.000,\"dur\":5.000,\"name\":\"list.append\""), std::string::npos);
    // calls of 20 us or more: 100, 30, 20, 20 (not 5 and 15)
    yp_timeline_opts m = {0, 0, 20, UINT32_MAX, 0};
    ASSERT_EQ(yp_export_chrome(fx.trace.c_str(), fx.s, p.c_str(), &m, err, sizeof err), YP_OK) << err;
    EXPECT_EQ(count(read_all(p), "\"ph\":\"X\""), 4u);
    // another thread's only: none of these
    yp_timeline_opts th = {0, 0, 0, 2, 0};
    ASSERT_EQ(yp_export_chrome(fx.trace.c_str(), fx.s, p.c_str(), &th, err, sizeof err), YP_OK) << err;
    EXPECT_EQ(count(read_all(p), "\"ph\":\"X\""), 0u);
    remove(p.c_str());
    // over the limit: refused, nothing written
    yp_timeline_opts lim = {0, 0, 0, UINT32_MAX, 100};
    EXPECT_EQ(yp_export_chrome(fx.trace.c_str(), fx.s, p.c_str(), &lim, err, sizeof err), YP_ERR_ARG);
    EXPECT_NE(std::string(err).find("6 calls"), std::string::npos) << err;
    EXPECT_NE(std::string(err).find("--min-duration"), std::string::npos) << err;
    EXPECT_EQ(access(p.c_str(), F_OK), -1);
    yp_timeline_opts ok = {0, 0, 0, UINT32_MAX, 4096};
    EXPECT_EQ(yp_export_chrome(fx.trace.c_str(), fx.s, p.c_str(), &ok, err, sizeof err), YP_OK) << err;
    remove(p.c_str());
}

TEST(Export, PstatsIsAMarshalDict) {
    Fixture fx;
    std::string p = tmp(".pstats");
    ASSERT_EQ(yp_export_pstats(fx.s, p.c_str()), YP_OK);
    std::string t = read_all(p);
    ASSERT_GT(t.size(), 10u);
    EXPECT_EQ(t[0], '{');
    EXPECT_EQ(t.back(), '0');
    EXPECT_NE(t.find("<method 'append' of 'list' objects>"), std::string::npos);
    remove(p.c_str());
}

} // namespace

// ---- the protobuf writer and the stored-block gzip (yp_pb_int.h) ------------

TEST(Protobuf, VarintsAndFieldsAsTheWireFormatSays) {
    yp_pb b{};
    const struct {
        uint64_t v;
        std::vector<uint8_t> bytes;
    } cases[] = {{0, {0x00}},
                 {1, {0x01}},
                 {127, {0x7F}},
                 {128, {0x80, 0x01}},
                 {300, {0xAC, 0x02}},
                 {16383, {0xFF, 0x7F}},
                 {16384, {0x80, 0x80, 0x01}},
                 {UINT64_MAX, {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}}};
    for (const auto &c : cases) {
        yp_pb_reset(&b);
        yp_pb_varint(&b, c.v);
        EXPECT_EQ(std::vector<uint8_t>(b.p, b.p + b.len), c.bytes) << c.v;
    }
    // field 1 = 150 (the protobuf documentation's example), a string, a
    // negative int64 (ten bytes), a nested message of field 3
    yp_pb_reset(&b);
    yp_pb_uint(&b, 1, 150);
    yp_pb_str(&b, 2, "testing");
    yp_pb_sint(&b, 4, -1);
    yp_pb m{};
    yp_pb_uint(&m, 1, 150);
    yp_pb_msg(&b, 3, &m);
    std::vector<uint8_t> want = {0x08, 0x96, 0x01, 0x12, 0x07, 't',  'e',  's',  't',  'i',
                                 'n',  'g',  0x20, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                 0xFF, 0xFF, 0x01, 0x1A, 0x03, 0x08, 0x96, 0x01};
    EXPECT_EQ(std::vector<uint8_t>(b.p, b.p + b.len), want);
    EXPECT_EQ(b.failed, 0);
    yp_pb_free(&b);
    yp_pb_free(&m);
}

TEST(Gzip, StoredBlocksAcrossTheBlockSizeWithCrcAndSize) {
    std::string p = tmp(".gz");
    std::vector<uint8_t> data(200000);
    for (size_t i = 0; i < data.size(); i++) data[i] = (uint8_t)(i * 131 + (i >> 7));
    FILE *f = fopen(p.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    yp_gz z;
    yp_gz_open(&z, f);
    yp_gz_write(&z, data.data(), 70000); // more than a block, in two writes
    yp_gz_write(&z, data.data() + 70000, data.size() - 70000);
    yp_gz_close(&z);
    fclose(f);
    std::string t = read_all(p);
    const uint8_t *g = (const uint8_t *)t.data();
    ASSERT_GE(t.size(), 18u);
    EXPECT_EQ(g[0], 0x1F);
    EXPECT_EQ(g[1], 0x8B);
    EXPECT_EQ(g[2], 8); // deflate
    // the blocks: BFINAL only on the last, LEN and its complement, the bytes
    size_t off = 10, got = 0, blocks = 0;
    bool last = false;
    while (!last) {
        ASSERT_LE(off + 5, t.size());
        last = g[off] & 1;
        EXPECT_EQ(g[off] >> 1, 0); // BTYPE 00: stored
        unsigned len = g[off + 1] | g[off + 2] << 8, nlen = g[off + 3] | g[off + 4] << 8;
        EXPECT_EQ(len ^ 0xFFFFu, nlen);
        ASSERT_LE(off + 5 + len, t.size());
        EXPECT_EQ(memcmp(g + off + 5, data.data() + got, len), 0);
        got += len, off += 5 + len, blocks++;
    }
    EXPECT_EQ(got, data.size());
    EXPECT_GE(blocks, 4u);
    ASSERT_EQ(off + 8, t.size());
    uint32_t crc = g[off] | g[off + 1] << 8 | g[off + 2] << 16 | (uint32_t)g[off + 3] << 24;
    uint32_t size = g[off + 4] | g[off + 5] << 8 | g[off + 6] << 16 | (uint32_t)g[off + 7] << 24;
    EXPECT_EQ(crc, yp_crc32(0, data.data(), data.size()));
    EXPECT_EQ(size, (uint32_t)data.size());
    remove(p.c_str());
}
