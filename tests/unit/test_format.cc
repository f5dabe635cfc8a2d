// Writer -> reader round trips, truncation at every offset, byte flips,
// unknown chunk kinds, foreign and empty files, hostile size fields.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <zstd.h>

#include "yprof/format.h"
#include "yp_test_util.h"

namespace {

std::string tmp_path(const char *name) {
    return std::string(::testing::TempDir()) + "yp_format_" + name + "_" + std::to_string(getpid()) + ".yp";
}

std::vector<uint8_t> slurp(const std::string &p) {
    std::vector<uint8_t> v;
    FILE *f = fopen(p.c_str(), "rb");
    if (!f) return v;
    uint8_t buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) v.insert(v.end(), buf, buf + n);
    fclose(f);
    return v;
}

// A realistic call/return stream: nested calls, small time deltas.
std::vector<yp_event> make_events(std::mt19937_64 &rng, size_t n, uint64_t &ts) {
    std::vector<yp_event> ev(n);
    std::vector<uint32_t> stack;
    for (size_t i = 0; i < n; i++) {
        ts += 20 + rng() % 200;
        yp_event &e = ev[i];
        memset(&e, 0, sizeof e);
        e.ts = ts;
        if (stack.empty() || (stack.size() < 40 && rng() % 2)) {
            e.func_id = 1 + (uint32_t)(rng() % 500);
            e.kind = (rng() % 5) ? YP_EV_CALL : YP_EV_C_CALL;
            stack.push_back(e.func_id);
        } else {
            e.func_id = stack.back();
            stack.pop_back();
            e.kind = YP_EV_RETURN;
        }
    }
    return ev;
}

struct Written {
    std::vector<std::vector<yp_event>> per_thread;
    size_t chunks = 0;
};

Written write_trace(const std::string &path, int threads, size_t events_per_thread, size_t chunk,
                    uint64_t seed, bool footer = true) {
    std::mt19937_64 rng(seed);
    yp_writer_options o{};
    o.python_version = "3.11.7";
    o.command_line = "python app.py --flag";
    yp_writer *w = nullptr;
    char err[256];
    EXPECT_EQ(yp_writer_open(path.c_str(), &o, &w, err, sizeof err), YP_OK) << err;
    yp_symbol sym[2] = {{1, 10, 0, "Server.handle", "server", "/srv/server.py"},
                        {2, 0, 1, "list.append", "builtins", ""}};
    EXPECT_EQ(yp_writer_symbols(w, sym, 2), YP_OK);
    Written out;
    out.per_thread.resize(threads);
    std::vector<uint64_t> ts(threads, 1000);
    for (int t = 0; t < threads; t++) {
        yp_thread_info ti{(uint32_t)t + 1, 1000u + t, 2000u + t, 0, "worker"};
        EXPECT_EQ(yp_writer_threads(w, &ti, 1), YP_OK);
    }
    out.chunks = 2 + threads;
    for (size_t done = 0; done < events_per_thread; done += chunk) {
        for (int t = 0; t < threads; t++) {
            size_t n = std::min(chunk, events_per_thread - done);
            auto ev = make_events(rng, n, ts[t]);
            EXPECT_EQ(yp_writer_events(w, (uint32_t)t + 1, ev.data(), n, 0), YP_OK);
            out.per_thread[t].insert(out.per_thread[t].end(), ev.begin(), ev.end());
            out.chunks++;
        }
    }
    yp_footer f{};
    f.hook_ns = 123;
    EXPECT_EQ(yp_writer_close(w, footer ? &f : nullptr), YP_OK);
    return out;
}

TEST(Codec, RoundTripAndStrictness) {
    std::mt19937_64 rng(1);
    uint64_t ts = 5;
    auto ev = make_events(rng, 10000, ts);
    std::vector<uint8_t> buf(yp_events_encode_bound(ev.size()));
    size_t ts_len = 0;
    size_t len = yp_events_encode(ev.data(), ev.size(), ev[0].ts, 0, buf.data(), buf.size(), &ts_len);
    ASSERT_GT(len, 0u);
    ASSERT_GT(ts_len, ev.size() - 1); // at least a byte per delta
    ASSERT_LT(ts_len, len);
    std::vector<yp_event> back(ev.size());
    ASSERT_EQ(yp_events_decode(buf.data(), len, ev.size(), ev[0].ts, back.data()), YP_OK);
    for (size_t i = 0; i < ev.size(); i++) {
        ASSERT_EQ(back[i].ts, ev[i].ts);
        ASSERT_EQ(back[i].func_id, ev[i].func_id);
        ASSERT_EQ(back[i].kind, ev[i].kind);
    }
    // one byte short, one byte extra, one event too many: all corrupt
    EXPECT_EQ(yp_events_decode(buf.data(), len - 1, ev.size(), ev[0].ts, back.data()), YP_ERR_CORRUPT);
    buf.push_back(0);
    EXPECT_EQ(yp_events_decode(buf.data(), len + 1, ev.size(), ev[0].ts, back.data()), YP_ERR_CORRUPT);
    back.resize(ev.size() + 1);
    EXPECT_EQ(yp_events_decode(buf.data(), len, ev.size() + 1, ev[0].ts, back.data()), YP_ERR_CORRUPT);
}

// A CORO record's identity is 56 bits: func_id and the padding.
TEST(Codec, CoroIdentityRoundTrips) {
    std::vector<yp_event> ev(3);
    ev[0] = {10, 5, YP_EV_CALL, {0}};
    ev[1] = {12, 0, YP_EV_CORO, {0}};
    yp_event_set_coro(&ev[1], 0xFEDCBA98765432ull);
    ev[2] = {12, 5, YP_EV_SUSPEND, {0}};
    std::vector<uint8_t> buf(yp_events_encode_bound(ev.size()));
    size_t len = yp_events_encode(ev.data(), ev.size(), 10, 0, buf.data(), buf.size(), nullptr);
    ASSERT_GT(len, 0u);
    std::vector<yp_event> back(ev.size());
    ASSERT_EQ(yp_events_decode(buf.data(), len, ev.size(), 10, back.data()), YP_OK);
    EXPECT_EQ(back[1].kind, YP_EV_CORO);
    EXPECT_EQ(yp_event_coro(&back[1]), 0xFEDCBA98765432ull);
    EXPECT_EQ(back[1].ts, 12u);
    EXPECT_EQ(back[2].kind, YP_EV_SUSPEND);
    EXPECT_EQ(back[2].func_id, 5u);
}

// Format version 1 interleaved (Δts, id<<4|kind) pairs; version 2 traces
// hold two columns. Old traces must stay readable.
TEST(Codec, Version1PayloadStillDecodes) {
    const uint8_t v1[] = {5, (7 << 4) | YP_EV_CALL, 0x80, 0x01, (7 << 4) | YP_EV_RETURN};
    yp_event back[2];
    ASSERT_EQ(yp_events_decode_v1(v1, sizeof v1, 2, 100, back), YP_OK);
    EXPECT_EQ(back[0].ts, 105u);
    EXPECT_EQ(back[1].ts, 105u + 128u);
    EXPECT_EQ(back[0].func_id, 7u);
    EXPECT_EQ(back[1].kind, YP_EV_RETURN);
    // read as columns the same bytes are other events: deltas 5 and 0x71,
    // then id 0x80 0x01 (a SWITCH into greenlet 8) and 0x72 (a RETURN of 7)
    ASSERT_EQ(yp_events_decode(v1, sizeof v1, 2, 100, back), YP_OK);
    EXPECT_EQ(back[1].ts, 105u + 0x71u);
    EXPECT_EQ(back[0].kind, YP_EV_SWITCH);
    EXPECT_EQ(yp_event_coro(&back[0]), 8u);
    EXPECT_EQ(back[1].kind, YP_EV_RETURN);
}

TEST(Codec, ShiftStoresCoarserTicks) {
    yp_event ev[3] = {{1000, 1, YP_EV_CALL, {0}}, {1007, 1, YP_EV_RETURN, {0}}, {1100, 2, YP_EV_CALL, {0}}};
    std::vector<uint8_t> buf(yp_events_encode_bound(3));
    size_t ts_len = 0;
    size_t len = yp_events_encode(ev, 3, 1000 >> 3, 3, buf.data(), buf.size(), &ts_len);
    ASSERT_EQ(ts_len, 3u); // deltas 0, 0, 12: one byte each
    yp_event back[3];
    ASSERT_EQ(yp_events_decode(buf.data(), len, 3, 1000 >> 3, back), YP_OK);
    EXPECT_EQ(back[0].ts, 125u);
    EXPECT_EQ(back[1].ts, 125u); // 1007 >> 3
    EXPECT_EQ(back[2].ts, 137u); // 1100 >> 3
    EXPECT_EQ(back[2].func_id, 2u);
}

TEST(Format, ResolutionSetsTheUnitOfStoredTimestamps) {
    std::string p = tmp_path("res");
    yp_writer_options o{};
    o.clock_kind = YP_CLOCK_TSC;
    o.ns_per_tick = 0.5; // a 2 GHz TSC
    o.start_ticks = 4096;
    o.resolution_ns = 4.0; // -> units of 8 ticks
    yp_writer *w = nullptr;
    ASSERT_EQ(yp_writer_open(p.c_str(), &o, &w, nullptr, 0), YP_OK);
    std::mt19937_64 rng(9);
    uint64_t ts = 5000;
    auto ev = make_events(rng, 5000, ts);
    ASSERT_EQ(yp_writer_events(w, 1, ev.data(), ev.size(), 0), YP_OK);
    yp_footer f{};
    f.end_ticks = ts + 80;
    ASSERT_EQ(yp_writer_close(w, &f), YP_OK);
    yp_reader *r;
    ASSERT_EQ(yp_reader_open(p.c_str(), &r, nullptr, 0), YP_OK);
    EXPECT_EQ(yp_reader_header(r)->ns_per_tick, 4.0);
    EXPECT_EQ(yp_reader_header(r)->start_ticks, 512u);
    yp_chunk c;
    size_t i = 0;
    while (yp_reader_next(r, &c) == YP_OK) {
        if (c.h.kind == YP_CHUNK_EVENTS) {
            EXPECT_EQ(c.h.first_ts, ev[0].ts >> 3);
            for (uint32_t k = 0; k < c.h.n_records; k++, i++) {
                ASSERT_EQ(c.events[k].ts, ev[i].ts >> 3) << i;
                ASSERT_EQ(c.events[k].func_id, ev[i].func_id);
            }
        } else if (c.h.kind == YP_CHUNK_FOOTER) {
            yp_footer back;
            ASSERT_EQ(yp_chunk_footer(&c, &back), YP_OK);
            EXPECT_EQ(back.end_ticks, (ts + 80) >> 3);
        }
    }
    EXPECT_EQ(i, ev.size());
    yp_reader_close(r);
    remove(p.c_str());
}

TEST(Format, RoundTripMillionsOfEventsOverManyThreads) {
    std::string p = tmp_path("rt");
    Written w = write_trace(p, 16, 200000, 8192, 42); // 3.2M events
    yp_reader *r = nullptr;
    char err[256];
    ASSERT_EQ(yp_reader_open(p.c_str(), &r, err, sizeof err), YP_OK) << err;
    EXPECT_STREQ(yp_reader_header(r)->python_version, "3.11.7");
    EXPECT_STREQ(yp_reader_header(r)->command_line, "python app.py --flag");
    std::vector<std::vector<yp_event>> got(16);
    yp_chunk c;
    yp_status st;
    size_t syms = 0, footers = 0;
    std::vector<uint32_t> next_seq(17, 0);
    while ((st = yp_reader_next(r, &c)) == YP_OK) {
        if (c.h.kind == YP_CHUNK_EVENTS) {
            ASSERT_GE(c.h.thread_id, 1u);
            ASSERT_LE(c.h.thread_id, 16u);
            EXPECT_EQ(c.h.seq, next_seq[c.h.thread_id]++);
            got[c.h.thread_id - 1].insert(got[c.h.thread_id - 1].end(), c.events, c.events + c.h.n_records);
        } else if (c.h.kind == YP_CHUNK_SYMBOLS) {
            ASSERT_EQ(yp_chunk_symbols(
                          &c,
                          [](void *ctx, const yp_symbol *s) {
                              auto *n = static_cast<size_t *>(ctx);
                              if (s->func_id == 1) {
                                  EXPECT_STREQ(s->name, "Server.handle");
                                  EXPECT_EQ(s->lineno, 10u);
                              } else {
                                  EXPECT_STREQ(s->name, "list.append");
                                  EXPECT_EQ(s->builtin, 1);
                              }
                              (*n)++;
                              return 0;
                          },
                          &syms),
                      YP_OK);
        } else if (c.h.kind == YP_CHUNK_FOOTER) {
            yp_footer f;
            ASSERT_EQ(yp_chunk_footer(&c, &f), YP_OK);
            EXPECT_EQ(f.n_events, 16u * 200000u);
            EXPECT_EQ(f.hook_ns, 123u);
            EXPECT_GT(f.n_index, 0u);
            footers++;
        }
    }
    EXPECT_EQ(st, YP_END);
    EXPECT_EQ(syms, 2u);
    EXPECT_EQ(footers, 1u);
    yp_reader_stats rs;
    yp_reader_stats_get(r, &rs);
    EXPECT_TRUE(rs.has_footer);
    EXPECT_EQ(rs.events, 16u * 200000u);
    EXPECT_EQ(rs.bytes_ok, rs.bytes_total);
    for (int t = 0; t < 16; t++) {
        ASSERT_EQ(got[t].size(), w.per_thread[t].size());
        ASSERT_EQ(0, memcmp(got[t].data(), w.per_thread[t].data(), got[t].size() * sizeof(yp_event)));
    }
    yp_reader_close(r);
    remove(p.c_str());
}

// Every whole chunk before the cut comes back; the status says truncated.
TEST(Format, TruncationAtEveryOffset) {
    std::string p = tmp_path("trunc");
    write_trace(p, 2, 300, 100, 7);
    std::vector<uint8_t> full = slurp(p);
    ASSERT_GT(full.size(), 200u);
    // offsets where chunks end, from an intact read
    std::vector<uint64_t> ends;
    {
        yp_reader *r;
        ASSERT_EQ(yp_reader_open_mem(full.data(), full.size(), &r, nullptr, 0), YP_OK);
        yp_chunk c;
        while (yp_reader_next(r, &c) == YP_OK)
            ends.push_back(c.offset + YP_CHUNK_HEADER_SIZE + c.h.comp_bytes);
        yp_reader_close(r);
    }
    uint64_t header_end = ends.empty() ? 0 : 0;
    (void)header_end;
    for (size_t cut = 0; cut < full.size(); cut++) {
        yp_reader *r = nullptr;
        char err[256] = "";
        yp_status st = yp_reader_open_mem(full.data(), cut, &r, err, sizeof err);
        if (st != YP_OK) {
            EXPECT_TRUE(st == YP_ERR_NOT_TRACE || st == YP_ERR_TRUNCATED) << cut << " " << err;
            EXPECT_NE(err[0], 0);
            continue;
        }
        size_t whole = 0;
        for (uint64_t e : ends) whole += e <= cut;
        size_t got = 0;
        yp_chunk c;
        while ((st = yp_reader_next(r, &c)) == YP_OK) got++;
        EXPECT_EQ(got, whole) << "cut at " << cut;
        bool at_boundary = false;
        for (uint64_t e : ends) at_boundary |= e == cut;
        yp_reader_stats rs;
        yp_reader_stats_get(r, &rs);
        if (at_boundary || got == 0) {
            EXPECT_TRUE(st == YP_END || st == YP_ERR_TRUNCATED) << cut;
        } else {
            EXPECT_EQ(st, YP_ERR_TRUNCATED) << cut;
            EXPECT_TRUE(rs.truncated);
        }
        EXPECT_FALSE(rs.has_footer);
        EXPECT_LE(rs.bytes_ok, cut);
        yp_reader_close(r);
    }
    remove(p.c_str());
}

TEST(Format, RandomByteFlipsNeverCrashAndAreReported) {
    std::string p = tmp_path("flip");
    Written w = write_trace(p, 3, 2000, 500, 9);
    std::vector<uint8_t> full = slurp(p);
    size_t total_events = 3 * 2000;
    std::mt19937_64 rng(123);
    int detected = 0;
    for (int iter = 0; iter < 2000; iter++) {
        std::vector<uint8_t> d = full;
        int flips = 1 + (int)(rng() % 4);
        for (int k = 0; k < flips; k++) d[64 + rng() % (d.size() - 64)] ^= (uint8_t)(1u << (rng() % 8));
        yp_reader *r = nullptr;
        if (yp_reader_open_mem(d.data(), d.size(), &r, nullptr, 0) != YP_OK) {
            detected++;
            continue;
        }
        yp_chunk c;
        yp_status st;
        size_t events = 0;
        int bad = 0;
        for (int guard = 0; guard < 100000; guard++) {
            st = yp_reader_next(r, &c);
            if (st == YP_END || st == YP_ERR_TRUNCATED) break;
            if (st != YP_OK) {
                bad++;
                continue;
            }
            if (c.h.kind == YP_CHUNK_EVENTS) events += c.h.n_records;
        }
        EXPECT_LE(events, total_events);
        if (bad || st == YP_ERR_TRUNCATED) detected++;
        yp_reader_close(r);
    }
    // CRC-32 catches every 1-4 bit flip in headers and payloads
    EXPECT_EQ(detected, 2000);
    (void)w;
    remove(p.c_str());
}

// Builds a chunk by hand, following docs/format.md byte by byte.
std::vector<uint8_t> raw_chunk(uint8_t kind, const std::vector<uint8_t> &payload) {
    std::vector<uint8_t> h(YP_CHUNK_HEADER_SIZE, 0);
    auto put32 = [&](size_t off, uint32_t v) {
        for (int i = 0; i < 4; i++) h[off + i] = (uint8_t)(v >> (8 * i));
    };
    put32(0, YP_CHUNK_MAGIC);
    h[4] = kind;
    h[6] = YP_CHUNK_HEADER_SIZE;
    put32(16, 1);
    put32(20, 0); // raw bytes: filled by caller if needed
    put32(24, (uint32_t)payload.size());
    put32(48, yp_crc32(0, payload.data(), payload.size()));
    put32(52, yp_crc32(0, h.data(), 52));
    h.insert(h.end(), payload.begin(), payload.end());
    return h;
}

TEST(Format, UnknownChunkKindIsSkipped) {
    std::string p = tmp_path("unknown");
    write_trace(p, 1, 100, 100, 3, false);
    std::vector<uint8_t> d = slurp(p);
    // a future chunk kind with a garbage (non-zstd) payload, appended
    std::vector<uint8_t> extra = raw_chunk(200, std::vector<uint8_t>(37, 0xAB));
    size_t cut = d.size();
    d.insert(d.end(), extra.begin(), extra.end());
    yp_reader *r;
    ASSERT_EQ(yp_reader_open_mem(d.data(), d.size(), &r, nullptr, 0), YP_OK);
    yp_chunk c;
    yp_status st;
    size_t events = 0, chunks = 0;
    while ((st = yp_reader_next(r, &c)) != YP_END && st != YP_ERR_TRUNCATED) {
        chunks++;
        if (st == YP_OK && c.h.kind == YP_CHUNK_EVENTS) events += c.h.n_records;
    }
    EXPECT_EQ(events, 100u);
    yp_reader_stats rs;
    yp_reader_stats_get(r, &rs);
    EXPECT_EQ(rs.bytes_skipped, 0u);
    EXPECT_GT(rs.bytes_ok, (uint64_t)cut - 1);
    yp_reader_close(r);
    remove(p.c_str());
}

TEST(Format, EmptyForeignAndFutureFiles) {
    yp_reader *r;
    char err[256];
    EXPECT_EQ(yp_reader_open_mem("", 0, &r, err, sizeof err), YP_ERR_NOT_TRACE);
    EXPECT_NE(std::string(err).find("empty"), std::string::npos);
    const char *text = "hello, this is a text file\n";
    EXPECT_EQ(yp_reader_open_mem(text, strlen(text), &r, err, sizeof err), YP_ERR_NOT_TRACE);
    std::string p = tmp_path("ver");
    write_trace(p, 1, 10, 10, 1);
    std::vector<uint8_t> d = slurp(p);
    d[8] = 99; // version field
    uint32_t crc = yp_crc32(0, d.data(), 60);
    for (int i = 0; i < 4; i++) d[60 + i] = (uint8_t)(crc >> (8 * i));
    EXPECT_EQ(yp_reader_open_mem(d.data(), d.size(), &r, err, sizeof err), YP_ERR_VERSION);
    EXPECT_NE(std::string(err).find("version 99"), std::string::npos) << err;
    EXPECT_EQ(yp_reader_open("/nonexistent/dir/x.yp", &r, err, sizeof err), YP_ERR_IO);
    EXPECT_EQ(yp_reader_open("/tmp", &r, err, sizeof err), YP_ERR_IO);
    remove(p.c_str());
}

TEST(Format, HugeSizeFieldsAreCorruptNotAllocated) {
    std::string p = tmp_path("huge");
    write_trace(p, 1, 10, 10, 1, false);
    std::vector<uint8_t> d = slurp(p);
    std::vector<uint8_t> c = raw_chunk(YP_CHUNK_EVENTS, {});
    auto put32 = [&](size_t off, uint32_t v) {
        for (int i = 0; i < 4; i++) c[off + i] = (uint8_t)(v >> (8 * i));
    };
    put32(16, 0xFFFFFFFFu); // n_records
    put32(20, 0xFFFFFFF0u); // raw bytes
    put32(24, 0x7FFFFFFFu); // comp bytes
    put32(52, yp_crc32(0, c.data(), 52));
    d.insert(d.end(), c.begin(), c.end());
    yp_reader *r;
    ASSERT_EQ(yp_reader_open_mem(d.data(), d.size(), &r, nullptr, 0), YP_OK);
    yp_chunk ch;
    yp_status st;
    int corrupt = 0;
    while ((st = yp_reader_next(r, &ch)) != YP_END && st != YP_ERR_TRUNCATED) corrupt += st == YP_ERR_CORRUPT;
    EXPECT_EQ(corrupt, 1);
    yp_reader_close(r);
    remove(p.c_str());
}

TEST(Format, CompressionOfARealisticStream) {
    std::string p = tmp_path("ratio");
    write_trace(p, 1, 1000000, 65536, 5);
    std::vector<uint8_t> d = slurp(p);
    double per_event = (double)d.size() / 1e6;
    RecordProperty("bytes_per_event", std::to_string(per_event));
    // random ids and deltas are harder than real code; real-trace figures
    // are in docs/performance.md. This guards against a broken coder.
    EXPECT_LT(per_event, 4.0);
    remove(p.c_str());
}

// Real code repeats its call patterns while its timings are noisy: the
// version 2 coding (columns, a zstd block per column, 4 ns units) must beat
// the version 1 coding (interleaved pairs, every tick) on such a stream by a
// wide margin. Seeded, so the sizes are exact.
TEST(Format, ColumnsAndResolutionBeatInterleavedPairs) {
    std::mt19937_64 rng(11);
    const uint32_t pattern[] = {1, 2, 3, 3, 2, 4, 5, 5, 4, 1, 6, 7, 7, 6}; // ids in call order
    const uint8_t kinds[] = {1, 1, 1, 2, 2, 1, 1, 2, 2, 2, 1, 3, 4, 2};
    std::vector<yp_event> ev(1 << 20);
    uint64_t ts = 1000000;
    for (size_t i = 0; i < ev.size(); i++) {
        ts += 150 + rng() % 250; // 75-200 ns at 0.5 ns per tick
        ev[i] = yp_event{ts, pattern[i % 14], kinds[i % 14], {0}};
    }
    const size_t chunk = 65536;
    size_t v1 = 0; // version 1: varint pairs, every tick, one zstd frame per chunk
    std::vector<uint8_t> raw(chunk * 15), comp(ZSTD_compressBound(chunk * 15));
    for (size_t at = 0; at < ev.size(); at += chunk) {
        uint8_t *p = raw.data();
        uint64_t prev = ev[at].ts;
        auto put = [&p](uint64_t v) {
            while (v >= 0x80) *p++ = (uint8_t)(v | 0x80), v >>= 7;
            *p++ = (uint8_t)v;
        };
        for (size_t i = at; i < at + chunk; i++) {
            put(ev[i].ts - prev);
            prev = ev[i].ts;
            put((uint64_t)ev[i].func_id << 4 | ev[i].kind);
        }
        v1 += ZSTD_compress(comp.data(), comp.size(), raw.data(), (size_t)(p - raw.data()), 1);
    }
    std::string path = tmp_path("v2size");
    yp_writer_options o{};
    o.clock_kind = YP_CLOCK_TSC;
    o.ns_per_tick = 0.5;
    o.resolution_ns = 4.0;
    yp_writer *w = nullptr;
    ASSERT_EQ(yp_writer_open(path.c_str(), &o, &w, nullptr, 0), YP_OK);
    for (size_t at = 0; at < ev.size(); at += chunk)
        ASSERT_EQ(yp_writer_events(w, 1, &ev[at], chunk, 0), YP_OK);
    ASSERT_EQ(yp_writer_close(w, nullptr), YP_OK);
    size_t v2 = slurp(path).size(); // the whole file, headers included
    RecordProperty("v1_bytes_per_event", std::to_string((double)v1 / ev.size()));
    RecordProperty("v2_bytes_per_event", std::to_string((double)v2 / ev.size()));
    // measured: 2.12 vs 0.63 bytes/event; columns alone (every tick kept) give 1.29
    EXPECT_LT((double)v2, 0.45 * (double)v1) << v1 << " vs " << v2;
    remove(path.c_str());
}

TEST(Format, WriteErrorsAreStickyNeverFatal) {
    yp_writer_options o{};
    yp_writer *w = nullptr;
    char err[256];
    // /dev/full takes the open and fails the header: no writer, one reason
    ASSERT_EQ(yp_writer_open("/dev/full", &o, &w, err, sizeof err), YP_ERR_IO);
    EXPECT_EQ(w, nullptr);
    EXPECT_NE(std::string(err).find("No space"), std::string::npos) << err;

    // A file that fills up after some chunks: the first failed write is the
    // error every later call returns, nothing more is written, close says
    // it, and the chunks written before it stay readable.
    std::string path = tmp_path("sticky");
    std::mt19937_64 rng(7);
    uint64_t ts = 0, written = 0, after = 0;
    size_t chunks_ok = 0;
    {
        FileSizeLimit limit(16384);
        ASSERT_EQ(yp_writer_open(path.c_str(), &o, &w, err, sizeof err), YP_OK) << err;
        yp_status st = YP_OK;
        while (st == YP_OK && chunks_ok < 1000) {
            std::vector<yp_event> ev = make_events(rng, 500, ts);
            st = yp_writer_events(w, 1, ev.data(), ev.size(), 0);
            if (st == YP_OK) chunks_ok++;
        }
        EXPECT_EQ(st, YP_ERR_IO);
        EXPECT_EQ(yp_writer_errno(w), EFBIG);
        yp_writer_totals(w, nullptr, nullptr, nullptr, &written);
        std::vector<yp_event> more = make_events(rng, 10, ts);
        EXPECT_EQ(yp_writer_events(w, 1, more.data(), more.size(), 0), YP_ERR_IO);
        EXPECT_EQ(yp_writer_marker(w, "k=v\n", 4), YP_ERR_IO);
        EXPECT_EQ(yp_writer_error(w), YP_ERR_IO);
        yp_writer_totals(w, nullptr, nullptr, nullptr, &after);
        EXPECT_EQ(after, written); // nothing written after the error
        yp_footer foot{};
        EXPECT_EQ(yp_writer_close(w, &foot), YP_ERR_IO);
    }
    EXPECT_GT(chunks_ok, 0u);
    std::vector<uint8_t> file = slurp(path);
    EXPECT_LE(file.size(), 16384u);
    EXPECT_EQ(file.size(), written);
    yp_reader *r = nullptr;
    ASSERT_EQ(yp_reader_open(path.c_str(), &r, err, sizeof err), YP_OK) << err;
    size_t seen = 0;
    yp_chunk c;
    while (yp_reader_next(r, &c) == YP_OK)
        if (c.h.kind == YP_CHUNK_EVENTS) seen++;
    EXPECT_EQ(seen, chunks_ok);
    yp_reader_close(r);
    remove(path.c_str());
}

} // namespace

namespace {
TEST(Crc, KnownValues) {
    // the standard CRC-32 check value, and lengths around the 8-byte steps
    EXPECT_EQ(yp_crc32(0, "123456789", 9), 0xCBF43926u);
    EXPECT_EQ(yp_crc32(0, "", 0), 0u);
    EXPECT_EQ(yp_crc32(0, "a", 1), 0xE8B7BE43u);
    EXPECT_EQ(yp_crc32(0, "The quick brown fox jumps over the lazy dog", 43), 0x414FA339u);
    // continuing a CRC equals one pass
    const char *s = "The quick brown fox jumps over the lazy dog";
    EXPECT_EQ(yp_crc32(yp_crc32(0, s, 13), s + 13, 30), 0x414FA339u);
}
} // namespace
