// The SPSC ring, and the recorder's flusher writing real threads' rings to a
// real trace file (run under TSan by the test command).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "yprof/analyze.h"
#include "yprof/recorder.h"
#include "../../pymod/yp_pollution.h"
#include "yp_test_util.h"

namespace {

// Every event in slot order, whatever the wrap-around.
TEST(Ring, WrapsAroundInOrder) {
    yp_ring *r = yp_ring_new(4); // 16 slots, 15 usable
    ASSERT_TRUE(r);
    uint32_t next_expected = 0, pushed = 0;
    for (int round = 0; round < 100; round++) {
        for (int i = 0; i < 10; i++, pushed++)
            ASSERT_TRUE(yp_ring_try_push(r, pushed, pushed, YP_EV_CALL) ||
                        yp_ring_put(r, pushed, pushed, YP_EV_CALL) == YP_RING_OK);
        const yp_event *a, *b;
        size_t na, nb;
        uint64_t h = yp_ring_peek(r, &a, &na, &b, &nb);
        ASSERT_EQ(na + nb, 10u);
        for (size_t i = 0; i < na; i++) ASSERT_EQ(a[i].func_id, next_expected++);
        for (size_t i = 0; i < nb; i++) ASSERT_EQ(b[i].func_id, next_expected++);
        yp_ring_release(r, h);
    }
    yp_ring_free(r);
}

// A full ring refuses (nothing stored, nothing counted: that is its user's
// business) and takes events again once the consumer has released some.
TEST(Ring, FullRingRefusesUntilTheConsumerReleases) {
    yp_ring *r = yp_ring_new(4);
    int ok = 0, full = 0;
    for (uint32_t i = 0; i < 40; i++) (yp_ring_put(r, i, i + 1, YP_EV_CALL) == YP_RING_OK ? ok : full)++;
    EXPECT_EQ(ok, 15);
    EXPECT_EQ(full, 25);
    EXPECT_FALSE(yp_ring_try_push(r, 99, 99, YP_EV_CALL));
    EXPECT_EQ(yp_ring_used(r), 15u);
    const yp_event *a, *b;
    size_t na, nb;
    uint64_t h = yp_ring_peek(r, &a, &na, &b, &nb);
    ASSERT_EQ(na + nb, 15u);
    EXPECT_EQ(a[14].func_id, 15u);
    yp_ring_release(r, h);
    EXPECT_EQ(yp_ring_used(r), 0u);
    EXPECT_TRUE(yp_ring_try_push(r, 100, 7, YP_EV_RETURN));
    EXPECT_EQ(yp_ring_last_ts(r), 100u);
    yp_ring_free(r);
}

// The stop point ends the fast path at its event and nothing else;
// yp_ring_put still stores past it.
TEST(Ring, StopPointEndsTheFastPathOnly) {
    yp_ring *r = yp_ring_new(10);
    yp_ring_set_stop(r, 5);
    uint32_t i = 0;
    while (yp_ring_try_push(r, i, i + 1, YP_EV_CALL)) i++;
    EXPECT_EQ(i, 5u);
    EXPECT_EQ(yp_ring_put(r, 5, 6, YP_EV_CALL), YP_RING_OK);
    EXPECT_FALSE(yp_ring_try_push(r, 6, 7, YP_EV_CALL));
    yp_ring_set_stop(r, UINT64_MAX);
    EXPECT_TRUE(yp_ring_try_push(r, 6, 7, YP_EV_CALL));
    EXPECT_EQ(yp_ring_head(r), 7u);
    yp_ring_free(r);
}

// A growable ring doubles only while empty, and only within its budget;
// destroying it gives the growth back.
TEST(Ring, GrowsOnlyWhenEmptyWithinTheBudget) {
    yp_ring_budget budget;
    budget.used_bytes = 0;
    budget.max_bytes = 16 * sizeof(yp_event) + 32 * sizeof(yp_event); // 16 -> 32 -> 64 slots
    yp_ring *r = yp_ring_new_growable(4, 8, &budget);
    ASSERT_TRUE(r);
    EXPECT_EQ(yp_ring_put(r, 1, 1, YP_EV_CALL), YP_RING_OK);
    EXPECT_EQ(yp_ring_grow(r), 0); // not empty
    const yp_event *a, *b;
    size_t na, nb;
    yp_ring_release(r, yp_ring_peek(r, &a, &na, &b, &nb));
    EXPECT_EQ(yp_ring_grow(r), 1);
    EXPECT_EQ(yp_ring_capacity(r), 32u);
    EXPECT_EQ(yp_ring_grow(r), 1);
    EXPECT_EQ(yp_ring_capacity(r), 64u);
    EXPECT_EQ(yp_ring_grow(r), 0); // budget spent
    EXPECT_EQ(budget.used_bytes.load(), 48 * sizeof(yp_event));
    for (uint32_t i = 0; i < 63; i++) ASSERT_EQ(yp_ring_put(r, i, i, YP_EV_CALL), YP_RING_OK);
    EXPECT_EQ(yp_ring_put(r, 63, 63, YP_EV_CALL), YP_RING_FULL);
    yp_ring_free(r);
    EXPECT_EQ(budget.used_bytes.load(), 0u);
}

// One producer thread, one consumer thread, small ring: every event
// arrives, in order (the producer retries a full ring).
TEST(Ring, ConcurrentProducerConsumerPassEveryEventInOrder) {
    yp_ring *r = yp_ring_new(8);
    const uint32_t N = 2000000;
    std::atomic<bool> done{false};
    uint64_t received = 0;
    uint32_t last = 0;
    bool ordered = true;
    std::thread consumer([&] {
        for (;;) {
            bool fin = done.load();
            const yp_event *a, *b;
            size_t na, nb;
            uint64_t h = yp_ring_peek(r, &a, &na, &b, &nb);
            auto eat = [&](const yp_event *e, size_t n) {
                for (size_t i = 0; i < n; i++) {
                    if (e[i].func_id != last + 1) ordered = false;
                    last = e[i].func_id;
                    received++;
                }
            };
            eat(a, na);
            eat(b, nb);
            yp_ring_release(r, h);
            if (fin && na + nb == 0) break;
        }
    });
    for (uint32_t i = 1; i <= N; i++)
        while (!yp_ring_try_push(r, i, i, YP_EV_CALL) && yp_ring_put(r, i, i, YP_EV_CALL) != YP_RING_OK)
            std::this_thread::yield();
    done = true;
    consumer.join();
    EXPECT_TRUE(ordered);
    EXPECT_EQ(received, (uint64_t)N);
    yp_ring_free(r);
}

struct Count {
    std::atomic<uint64_t> events{0}, symbols{0}, threads{0};
};

// Real threads, each with its own ring, the real flusher thread and file.
TEST(Recorder, FlusherWritesEveryEventOfEveryThread) {
    std::string path = std::string(::testing::TempDir()) + "yp_rec_" + std::to_string(getpid()) + ".yp";
    Count cnt;
    yp_rec_config cfg{};
    cfg.path = path.c_str();
    cfg.ring_bits = 12; // small rings: the flusher must keep up, or producers wait
    cfg.flush_ms = 2;
    cfg.wait_ms = 5000;
    cfg.sink.ctx = &cnt;
    cfg.sink.events = [](void *c, uint32_t, const yp_event *, size_t n, uint32_t) {
        static_cast<Count *>(c)->events += n;
    };
    cfg.sink.symbol = [](void *c, const yp_symbol *) { static_cast<Count *>(c)->symbols++; };
    cfg.sink.thread = [](void *c, const yp_thread_info *) { static_cast<Count *>(c)->threads++; };
    char err[256];
    ASSERT_EQ(yp_rec_open(&cfg, err, sizeof err), YP_OK) << err;
    uint32_t f = yp_rec_symbol_add("work", "test", "/t.py", 1, 0);
    ASSERT_GT(f, 0u);
    const int T = 16, PER = 100000;
    std::vector<std::thread> th;
    for (int t = 0; t < T; t++)
        th.emplace_back([&, t] {
            yp_ring *r = yp_rec_ring();
            ASSERT_TRUE(r);
            yp_rec_thread_set(r, 1000 + t, ("t" + std::to_string(t)).c_str());
            for (int i = 0; i < PER / 2; i++) {
                yp_rec_push(r, yp_clock_mono_ns(), f, YP_EV_CALL);
                yp_rec_push(r, yp_clock_mono_ns(), f, YP_EV_RETURN);
            }
        });
    for (auto &t : th) t.join();
    EXPECT_EQ(yp_rec_sync(5000), 0);
    ASSERT_EQ(yp_rec_close(nullptr), YP_OK);
    // each thread: its events plus one THREAD_END added when it exited
    EXPECT_EQ(cnt.events.load(), (uint64_t)T * PER + T);
    yp_rec_status st;
    yp_rec_status_get(&st);
    EXPECT_EQ(st.dropped, 0u);

    yp_agg *a = yp_agg_new();
    yp_load_result res;
    ASSERT_EQ(yp_load_trace(path.c_str(), a, &res, err, sizeof err, nullptr), YP_OK) << err;
    EXPECT_TRUE(res.has_footer);
    EXPECT_EQ(res.warning[0], 0) << res.warning;
    yp_stats *s = yp_agg_snapshot(a);
    ASSERT_EQ(s->n_threads, (size_t)T);
    uint64_t calls = 0;
    for (size_t i = 0; i < s->n_fstats; i++) calls += s->fstats[i].ncalls;
    EXPECT_EQ(calls, (uint64_t)T * PER / 2);
    EXPECT_EQ(s->session.events, (uint64_t)T * PER + T);
    for (size_t i = 0; i < s->n_threads; i++) EXPECT_EQ(s->threads[i].name[0], 't');
    yp_stats_free(s);
    yp_agg_free(a);
    remove(path.c_str());
}

TEST(Recorder, WriteErrorKeepsFeedingTheSink) {
    // /dev/full accepts the open, fails the header write: open fails cleanly
    yp_rec_config cfg{};
    cfg.path = "/dev/full";
    char err[256];
    EXPECT_EQ(yp_rec_open(&cfg, err, sizeof err), YP_ERR_IO);
    EXPECT_FALSE(yp_rec_is_open());

    // A disk that fills up while recording: the trace stops growing, the
    // error is kept with its text, and the sink (the live statistics) still
    // gets every event; nothing is dropped, nothing waits forever.
    std::string path = std::string(::testing::TempDir()) + "yp_full_" + std::to_string(getpid()) + ".yp";
    Count cnt;
    cfg.path = path.c_str();
    cfg.flush_ms = 2;
    cfg.wait_ms = 5000;
    cfg.sink.ctx = &cnt;
    cfg.sink.events = [](void *c, uint32_t, const yp_event *, size_t n, uint32_t) {
        static_cast<Count *>(c)->events += n;
    };
    const int PAIRS = 200000;
    {
        FileSizeLimit limit(8192);
        ASSERT_EQ(yp_rec_open(&cfg, err, sizeof err), YP_OK) << err;
        uint32_t f = yp_rec_symbol_add("work", "test", "/t.py", 1, 0);
        std::thread th([&] {
            yp_ring *r = yp_rec_ring();
            ASSERT_TRUE(r);
            for (int i = 0; i < PAIRS; i++) {
                yp_rec_push(r, yp_clock_mono_ns(), f, YP_EV_CALL);
                yp_rec_push(r, yp_clock_mono_ns(), f, YP_EV_RETURN);
            }
        });
        th.join();
        EXPECT_EQ(yp_rec_sync(5000), 0);
        yp_rec_status st;
        yp_rec_status_get(&st);
        EXPECT_EQ(st.write_error, YP_ERR_IO);
        EXPECT_NE(std::string(st.error_text).find(path), std::string::npos) << st.error_text;
        EXPECT_NE(std::string(st.error_text).find("File too large"), std::string::npos) << st.error_text;
        EXPECT_EQ(st.dropped, 0u);
        EXPECT_LE(st.bytes_written, 8192u);
        EXPECT_EQ(yp_rec_close(nullptr), YP_ERR_IO);
    }
    EXPECT_FALSE(yp_rec_is_open());
    EXPECT_EQ(cnt.events.load(), 2u * PAIRS + 1); // and the thread's THREAD_END
    remove(path.c_str());
}

TEST(Recorder, AllocationFailuresAreCountedNotFatal) {
    yp_rec_status before;
    yp_rec_status_get(&before);
    yp_rec_fail_allocs(2);
    EXPECT_EQ(yp_rec_symbol_add("x", "m", "f", 1, 0), 0u);
    std::thread t([] { EXPECT_EQ(yp_rec_ring(), nullptr); });
    t.join();
    yp_rec_status after;
    yp_rec_status_get(&after);
    EXPECT_EQ(after.alloc_failures - before.alloc_failures, 2u);
    EXPECT_GT(yp_rec_symbol_add("y", "m", "f", 1, 0), 0u); // next one works
}

// While recording, the flusher writes the pollution figures every marker_ms
// (MARKER chunks), asking the sink for what only the caller knows: a trace
// whose process dies before its footer still has them.
TEST(Recorder, MarkersCarryThePollutionFiguresWhileRecording) {
    std::string path = std::string(::testing::TempDir()) + "yp_mark_" + std::to_string(getpid()) + ".yp";
    static std::atomic<uint64_t> asked{0};
    asked = 0;
    yp_rec_config cfg{};
    cfg.path = path.c_str();
    cfg.flush_ms = 2;
    cfg.marker_ms = 5;
    cfg.sink.totals = [](void *, yp_rec_totals *t) {
        uint64_t n = ++asked;
        t->app_ns = n * 1000000; // 1 ms more at every marker
        t->interp_ns = 123;
        t->extra_bytes = 4096;
    };
    char err[256];
    ASSERT_EQ(yp_rec_open(&cfg, err, sizeof err), YP_OK) << err;
    uint32_t f = yp_rec_symbol_add("work", "test", "/t.py", 1, 0);
    std::thread th([&] {
        yp_ring *r = yp_rec_ring();
        ASSERT_TRUE(r);
        for (int i = 0; i < 60; i++) {
            yp_rec_push(r, yp_clock_mono_ns(), f, YP_EV_CALL);
            yp_rec_push(r, yp_clock_mono_ns(), f, YP_EV_RETURN);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    });
    th.join();
    EXPECT_EQ(yp_rec_sync(5000), 0);

    // read the file as it is now, before any footer: the markers are there
    yp_reader *rd;
    ASSERT_EQ(yp_reader_open(path.c_str(), &rd, err, sizeof err), YP_OK) << err;
    yp_chunk c;
    int markers = 0;
    std::string last;
    while (yp_reader_next(rd, &c) == YP_OK) {
        EXPECT_NE(c.h.kind, YP_CHUNK_FOOTER);
        if (c.h.kind != YP_CHUNK_MARKER) continue;
        markers++;
        last.assign((const char *)c.payload, c.h.raw_bytes);
    }
    yp_reader_close(rd);
    EXPECT_GE(markers, 3); // 60+ ms of recording, one every 5 ms (a busy machine may skip some)
    EXPECT_LE((uint64_t)markers, asked.load());
    EXPECT_NE(last.find("interp_ns=123\n"), std::string::npos) << last;
    EXPECT_NE(last.find("app_ns=" + std::to_string((uint64_t)markers * 1000000) + "\n"), std::string::npos)
        << last;
    EXPECT_NE(last.find("hook_ns="), std::string::npos);
    EXPECT_NE(last.find("profiler_bytes="), std::string::npos);

    // the analyzer takes them for a trace cut short (no footer yet)
    yp_agg *a = yp_agg_new();
    yp_load_result res;
    ASSERT_EQ(yp_load_trace(path.c_str(), a, &res, err, sizeof err, nullptr), YP_OK) << err;
    EXPECT_FALSE(res.has_footer);
    EXPECT_EQ(res.foot.interp_ns, 123u);
    // the last marker read (the flusher goes on writing them meanwhile)
    EXPECT_GE(res.foot.app_ns, (uint64_t)markers * 1000000);
    EXPECT_LE(res.foot.app_ns, asked.load() * 1000000);
    EXPECT_EQ(res.foot.app_ns % 1000000, 0u);
    EXPECT_GE(res.foot.profiler_bytes, 4096u);
    yp_agg_free(a);
    ASSERT_EQ(yp_rec_close(nullptr), YP_OK);
    remove(path.c_str());
}

// The interpreter estimate: the events' cost, plus the bytecode share of
// the time the threads ran Python code (at most what the hook and the
// events left), never more than the bound's share of the time the hook
// left.
TEST(Pollution, InterpreterEstimateIsTheEventsAndTheSlowerBytecodes) {
    // 1,000 events at 2 ns: 2,000 ns; 10,000 ns recorded, 2,000 in the hook
    EXPECT_EQ(yp_interp_estimate(1000, 2.0, 0.0, 0.0, 10000, 2000, 5000), 2000u);
    // and half of the 5,000 ns of Python code
    EXPECT_EQ(yp_interp_estimate(1000, 2.0, 0.5, 0.0, 10000, 2000, 5000), 4500u);
    EXPECT_EQ(yp_interp_estimate(1000, 2.0, 0.5, 0.5, 10000, 2000, 5000), 4000u); // bounded: 0.5 * 8,000
    // threads' code time over what the hook and the events left (6,000)
    EXPECT_EQ(yp_interp_estimate(1000, 2.0, 0.5, 0.0, 10000, 2000, 40000), 5000u);
    EXPECT_EQ(yp_interp_estimate(1000, 2.0, 0.5, 0.75, 10000, 12000, 0), 0u);  // hook over the recorded
    EXPECT_EQ(yp_interp_estimate(5000, 2.0, 0.0, 3.0, 10000, 2000, 0), 8000u); // a bound over 1 counts as 1
}

TEST(Pollution, HookSampleLeavesOutItsOwnClockReads) {
    // 100 ticks between the reads at 0.4 ns a tick, 24 of them the reads'
    // own (two reads back to back): 30.4 ns of hook
    EXPECT_DOUBLE_EQ(yp_sample_ns(1000, 1100, 24, 0.4), 30.4);
    EXPECT_DOUBLE_EQ(yp_sample_ns(1000, 1100, 0, 0.4), 40.0);
    EXPECT_DOUBLE_EQ(yp_sample_ns(1000, 1020, 24, 0.4), 0.0); // less than the reads: nothing
    EXPECT_DOUBLE_EQ(yp_sample_ns(1000, 990, 0, 0.4), 0.0);   // a clock that went back
}

// A trace's footer counts the hook time since that trace opened, as the
// caller's app_ns does: two traces in one process don't add up, and what
// the caller bounds the interpreter estimate with (yp_rec_trace_hook_ns) is
// this trace's hook time.
TEST(Recorder, FooterFiguresAreThisTracesOnly) {
    std::string path = std::string(::testing::TempDir()) + "yp_scope_" + std::to_string(getpid());
    char err[256];
    uint64_t hooks[2] = {7000000, 1000000}; // 7 ms in the first trace, 1 ms in the second
    for (int i = 0; i < 2; i++) {
        std::string p = path + "_" + std::to_string(i) + ".yp";
        yp_rec_config cfg{};
        cfg.path = p.c_str();
        ASSERT_EQ(yp_rec_open(&cfg, err, sizeof err), YP_OK) << err;
        std::thread th([&] { // a new thread: a ring of its own, freed at its end
            yp_ring *r = yp_rec_ring();
            ASSERT_TRUE(r);
            yp_rec_push(r, yp_clock_mono_ns(), yp_rec_symbol_add("g", "m", "/g.py", 1, 0), YP_EV_CALL);
            yp_rec_add_hook_ns(r, hooks[i]);
        });
        th.join();
        EXPECT_EQ(yp_rec_trace_hook_ns(), hooks[i]);
        yp_rec_totals t{};
        t.app_ns = 3000000;
        t.interp_ns = 2500000;
        ASSERT_EQ(yp_rec_close(&t), YP_OK);
        yp_agg *a = yp_agg_new();
        yp_load_result res;
        ASSERT_EQ(yp_load_trace(p.c_str(), a, &res, err, sizeof err, nullptr), YP_OK) << err;
        EXPECT_TRUE(res.has_footer);
        EXPECT_EQ(res.foot.hook_ns, hooks[i]);
        EXPECT_EQ(res.foot.app_ns, 3000000u);
        EXPECT_EQ(res.foot.interp_ns, 2500000u); // as the caller gave it
        yp_agg_free(a);
        remove(p.c_str());
    }
}

// A stop mark on a full ring whose flusher is stuck (here: in the sink): set
// without a push, so it neither waits for room nor is dropped, and written
// by the flusher right after the events pushed before it. Before, the mark
// was pushed under the registry lock and waited out wait_ms, then dropped.
struct Gate {
    std::atomic<int> closed{1}, in_sink{0};
    std::vector<yp_event> seen;
};

TEST(Recorder, StopMarkOnAFullRingNeitherWaitsNorIsDropped) {
    std::string path = std::string(::testing::TempDir()) + "yp_mark_" + std::to_string(getpid()) + ".yp";
    Gate g;
    yp_rec_config cfg{};
    cfg.path = path.c_str();
    cfg.ring_bits = 6; // 64 slots, 63 usable
    cfg.flush_ms = 1;
    cfg.wait_ms = 400;
    cfg.sink.ctx = &g;
    cfg.sink.events = [](void *c, uint32_t, const yp_event *ev, size_t n, uint32_t) {
        Gate *gt = static_cast<Gate *>(c);
        gt->in_sink = 1;
        while (gt->closed.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        gt->seen.insert(gt->seen.end(), ev, ev + n);
    };
    char err[256];
    ASSERT_EQ(yp_rec_open(&cfg, err, sizeof err), YP_OK) << err;
    uint32_t f = yp_rec_symbol_add("full", "m", "/f.py", 1, 0);
    std::atomic<int> filled{0}, release{0};
    yp_ring *ring = nullptr;
    std::thread th([&] {
        yp_ring *r = yp_rec_ring();
        ASSERT_TRUE(r);
        ring = r;
        yp_rec_push(r, 1, f, YP_EV_CALL); // the flusher takes it, and stays in the sink
        while (!g.in_sink.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        for (uint64_t i = 1; i < 63; i++) yp_rec_push(r, 1 + i, f, i & 1 ? YP_EV_RETURN : YP_EV_CALL);
        filled = 1;
        while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
    while (!filled.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    uint64_t t0 = yp_clock_mono_ns();
    yp_rec_mark_all(YP_EV_REC_STOP, 0); // the owner is parked: as stop() under the GIL
    uint64_t took_ns = yp_clock_mono_ns() - t0;
    EXPECT_LT(took_ns, 200000000u); // the wait it used to run into is 400 ms
    EXPECT_EQ(yp_rec_ring_dropped(ring), 0u);
    g.closed = 0;
    EXPECT_EQ(yp_rec_sync(5000), 0);
    release = 1;
    th.join();
    ASSERT_EQ(yp_rec_close(nullptr), YP_OK);
    // 63 events, the mark, THREAD_END
    ASSERT_EQ(g.seen.size(), 65u);
    for (size_t i = 0; i < 63; i++) EXPECT_EQ(g.seen[i].ts, i + 1);
    EXPECT_EQ(g.seen[63].kind, YP_EV_REC_STOP);
    EXPECT_EQ(g.seen[63].ts, 63u); // the ring's last timestamp (no wall time given)
    EXPECT_EQ(g.seen[64].kind, YP_EV_THREAD_END);
    remove(path.c_str());
}

// A growable ring doubles only when it fills and the flusher has emptied it,
// within the shared budget; nothing is lost across a growth, and the bytes
// go back to the budget when the thread's ring is retired.
TEST(Recorder, RingsGrowWhenFullWithinTheBudgetAndLoseNothing) {
    std::string path = std::string(::testing::TempDir()) + "yp_grow_" + std::to_string(getpid()) + ".yp";
    for (uint64_t budget : {64u << 10, 24u << 20}) {
        Count cnt;
        yp_rec_config cfg{};
        cfg.path = path.c_str();
        cfg.ring_budget_bytes = budget; // rings start at 64 KiB
        cfg.flush_ms = 50;
        cfg.wait_ms = 5000;
        cfg.sink.ctx = &cnt;
        cfg.sink.events = [](void *c, uint32_t, const yp_event *, size_t n, uint32_t) {
            std::this_thread::sleep_for(std::chrono::microseconds(200)); // a slow flusher
            static_cast<Count *>(c)->events += n;
        };
        char err[256];
        ASSERT_EQ(yp_rec_open(&cfg, err, sizeof err), YP_OK) << err;
        uint32_t f = yp_rec_symbol_add("g", "m", "/g.py", 1, 0);
        uint64_t cap = 0;
        const int N = 400000;
        std::thread th([&] {
            yp_ring *r = yp_rec_ring();
            ASSERT_TRUE(r);
            EXPECT_EQ((uintptr_t)r % 64, 0u); // the producer's fields own their cache line
            // the first thread's ring is new; the second gets the first's back
            // from the pool, with the capacity it grew to
            EXPECT_EQ(r->capacity_bytes.load(), budget == 64u << 10 ? 64u << 10 : 128u << 10);
            for (int i = 0; i < N; i++) yp_rec_push(r, i, f, i & 1 ? YP_EV_RETURN : YP_EV_CALL);
            cap = r->capacity_bytes.load();
        });
        th.join();
        EXPECT_EQ(yp_rec_sync(5000), 0);
        yp_rec_status st;
        yp_rec_status_get(&st);
        ASSERT_EQ(yp_rec_close(nullptr), YP_OK);
        EXPECT_EQ(st.dropped, 0u);
        EXPECT_EQ(cnt.events.load(), (uint64_t)N + 1); // and THREAD_END
        if (budget == 64u << 10)
            EXPECT_EQ(cap, 128u << 10); // one doubling, then the budget ran out
        else
            EXPECT_GT(cap, 128u << 10);
        EXPECT_GE(st.peak_bytes, cap); // the peak saw the grown ring
    }
    remove(path.c_str());
}

} // namespace
