// The recorder's policy for a thread's ring (recorder/yp_producer.c): drops
// counted and marked, the hook's check point, the flusher's nudge. A process
// of its own: these rings stay registered with the recorder singleton.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "yprof/recorder.h"

namespace {

// New threads' rings get this fixed size (the last trace's geometry stays).
static void ring_geometry(unsigned bits) {
    std::string path = std::string(::testing::TempDir()) + "yp_geom_" + std::to_string(getpid()) + ".yp";
    yp_rec_config cfg{};
    cfg.path = path.c_str();
    cfg.ring_bits = bits;
    char err[256];
    ASSERT_EQ(yp_rec_open(&cfg, err, sizeof err), YP_OK) << err;
    ASSERT_EQ(yp_rec_close(nullptr), YP_OK);
    remove(path.c_str());
}

// Run f in a new thread with the recorder's ring of that thread (no trace
// open: nobody drains it but f, and a full ring drops at once).
template <class F> static void in_thread(unsigned bits, F f) {
    ring_geometry(bits);
    std::thread th([&] {
        yp_ring *r = yp_rec_ring();
        ASSERT_TRUE(r);
        f(r);
    });
    th.join();
}

static std::vector<yp_event> take(yp_ring *r) {
    const yp_event *a, *b;
    size_t na, nb;
    uint64_t h = yp_ring_peek(r, &a, &na, &b, &nb);
    std::vector<yp_event> got(a, a + na);
    got.insert(got.end(), b, b + nb);
    yp_ring_release(r, h);
    return got;
}

TEST(Producer, FullRingDropsCountsAndMarksTheGap) {
    in_thread(4, [](yp_ring *r) {
        for (uint32_t i = 0; i < 40; i++) yp_rec_push(r, i, i + 1, YP_EV_CALL);
        // 15 fit, 25 dropped (no trace open: no waiting)
        EXPECT_EQ(yp_rec_ring_dropped(r), 25u);
        EXPECT_EQ(take(r).size(), 15u);
        yp_rec_push(r, 100, 7, YP_EV_RETURN);
        std::vector<yp_event> got = take(r);
        ASSERT_EQ(got.size(), 2u);
        EXPECT_EQ(got[0].kind, YP_EV_DROPPED);
        EXPECT_EQ(got[0].func_id, 25u);
        EXPECT_EQ(got[1].func_id, 7u);
    });
}

// The hook's check point: the push of event number `at` takes the slow
// path and returns 1, as does every push after it until the point is moved;
// the events themselves are stored in order either way.
TEST(Producer, CheckPointReturnsOneFromItsEventUntilMoved) {
    in_thread(10, [](yp_ring *r) {
        EXPECT_EQ(yp_ring_last_ts(r), 0u);
        yp_rec_set_check(r, 5);
        std::vector<int> ret;
        for (uint32_t i = 0; i < 8; i++) ret.push_back(yp_rec_push(r, 1000 + i, i + 1, YP_EV_CALL));
        EXPECT_EQ(ret, (std::vector<int>{0, 0, 0, 0, 0, 1, 1, 1}));
        yp_rec_set_check(r, 8 + 63); // as the hook does after a sample
        int ones = 0, first = -1;
        for (uint32_t i = 8; i < 200; i++) {
            int got = yp_rec_push(r, 1000 + i, i + 1, YP_EV_CALL);
            if (got && first < 0) first = (int)i;
            ones += got;
            if (got) yp_rec_set_check(r, i + 1 + 63);
        }
        EXPECT_EQ(first, 71);
        EXPECT_EQ(ones, 3); // 71, 135 and 199
        EXPECT_EQ(yp_ring_last_ts(r), 1199u);
        std::vector<yp_event> got = take(r);
        ASSERT_EQ(got.size(), 200u);
        for (uint32_t i = 0; i < 200; i++) ASSERT_EQ(got[i].func_id, i + 1);
    });
}

// The fast path stops exactly where the flusher is due its nudge (every
// 16Ki events) and resumes after it.
TEST(Producer, FastPathStopsForTheNudgeOnly) {
    in_thread(16, [](yp_ring *r) {
        uint32_t slow = 0;
        for (uint32_t i = 0; i < 3 * 0x4000; i++) {
            if (!yp_ring_try_push(r, i, 1, YP_EV_CALL)) {
                slow++;
                EXPECT_EQ(i % 0x4000, 0x3FFFu) << i;
                EXPECT_EQ(yp_rec_push_slow(r, i, 1, YP_EV_CALL), 0);
            }
            if ((i & 0x3FFF) == 0x3FFF) take(r);
        }
        EXPECT_EQ(slow, 3u); // at 16383, 32767 and 49151
        EXPECT_EQ(yp_ring_head(r), 3u * 0x4000);
    });
}

// A consumer thread against a small ring: everything pushed is either
// received in order or counted as dropped, and the DROPPED records say
// exactly how many.
TEST(Producer, ConcurrentDropsAreCountedWhereTheyHappen) {
    in_thread(8, [](yp_ring *r) {
        const uint32_t N = 2000000;
        std::atomic<bool> done{false};
        uint64_t received = 0, dropped_marked = 0;
        uint32_t last = 0;
        bool ordered = true;
        std::thread consumer([&] {
            for (;;) {
                bool fin = done.load();
                std::vector<yp_event> got = take(r);
                for (const yp_event &e : got) {
                    if (e.kind == YP_EV_DROPPED) {
                        dropped_marked += e.func_id;
                        continue;
                    }
                    if (e.func_id <= last) ordered = false;
                    last = e.func_id;
                    received++;
                }
                if (fin && got.empty()) break;
            }
        });
        for (uint32_t i = 1; i <= N; i++) yp_rec_push(r, i, i, YP_EV_CALL);
        // once the consumer has drained the ring, the next push writes the
        // pending drop mark before its event
        while (yp_ring_used(r) != 0) std::this_thread::yield();
        yp_rec_push(r, N + 1, N + 1, YP_EV_RETURN);
        done = true;
        consumer.join();
        EXPECT_TRUE(ordered);
        uint64_t dropped = yp_rec_ring_dropped(r);
        EXPECT_EQ(received + dropped, (uint64_t)N + 1);
        EXPECT_EQ(dropped_marked, dropped);
    });
}

} // namespace
