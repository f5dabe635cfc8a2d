// Hand-built event streams with exact expected statistics.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "yp_test_util.h"
#include "yprof/analyze.h"

namespace {

const uint8_t C = YP_EV_CALL, R = YP_EV_RETURN;

struct Agg {
    yp_agg *a = yp_agg_new();
    Agg() {
        yp_agg_set_ns_per_tick(a, 1e9); // 1 tick = 1 s: exact numbers
        const char *names[] = {"", "a", "b", "c", "d"};
        for (uint32_t i = 1; i <= 4; i++) {
            yp_symbol s{i, i * 10, 0, names[i], "m", "/m.py"};
            yp_agg_symbol(a, &s);
        }
    }
    ~Agg() { yp_agg_free(a); }
    void feed(uint32_t tid, std::vector<yp_event> ev, uint32_t dropped = 0) {
        ASSERT_EQ(yp_agg_events(a, tid, ev.data(), ev.size(), dropped), YP_OK);
    }
};

struct Snap {
    yp_stats *s;
    explicit Snap(yp_agg *a) : s(yp_agg_snapshot(a)) {}
    explicit Snap(yp_stats *st) : s(st) {} // takes it
    ~Snap() { yp_stats_free(s); }
    const yp_fstat *fn(const char *name, int thread = -1) {
        static yp_fstat out;
        bool found = false;
        memset(&out, 0, sizeof out);
        for (size_t i = 0; i < s->n_fstats; i++) {
            const yp_fstat &f = s->fstats[i];
            if (strcmp(s->funcs[f.func].name, name) || (thread >= 0 && (int)f.thread != thread)) continue;
            out.ncalls += f.ncalls;
            out.primitive_calls += f.primitive_calls;
            out.self_s += f.self_s;
            out.total_s += f.total_s;
            out.awaited_s += f.awaited_s;
            found = true;
        }
        return found ? &out : nullptr;
    }
    const yp_edge *edge(const char *caller, const char *callee) {
        for (size_t i = 0; i < s->n_edges; i++) {
            const yp_edge &e = s->edges[i];
            if (!strcmp(s->funcs[e.caller].name, caller) && !strcmp(s->funcs[e.callee].name, callee))
                return &e;
        }
        return nullptr;
    }
};

// Coroutines: two coroutine objects of "b" (ids 1 and 2) suspend and resume
// interleaved under "a"; each is one call from first start to end, its
// suspended time awaited, not self; the frame below counts only the stretches
// they ran.
static yp_event Coro(uint64_t ts, uint64_t co) {
    yp_event e = E(ts, 0, YP_EV_CORO);
    yp_event_set_coro(&e, co);
    return e;
}

TEST(Agg, CoroutinesAreOneCallEachWithAwaitedTime) {
    const uint8_t S = YP_EV_SUSPEND, U = YP_EV_RESUME;
    const uint64_t big = 0xABCDEF12345678ull; // 56 bits: func_id and pad
    Agg g;
    g.feed(1, {E(0, 1, C),  E(1, 2, C),  Coro(3, 7),    E(3, 2, S),  E(4, 2, C),  Coro(5, big),
               E(5, 2, S),  E(9, 1, R), // a ends; the two b are parked
               E(10, 4, C), Coro(10, 7), E(10, 2, U),   E(12, 3, C), E(13, 3, R), E(14, 2, R),
               E(15, 4, R), E(20, 4, C), Coro(20, big), E(20, 2, U), E(26, 2, R), E(27, 4, R)});
    Snap s(g.a);
    auto *b = s.fn("b");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->ncalls, 2u);
    EXPECT_EQ(b->primitive_calls, 2u);              // parked frames are not recursion
    EXPECT_DOUBLE_EQ(b->total_s, 13 + 22);          // 1..14 and 4..26
    EXPECT_DOUBLE_EQ(b->awaited_s, 7 + 15);         // 3..10 and 5..20
    EXPECT_DOUBLE_EQ(b->self_s, 2 + 2 + 1 + 1 + 6); // 1..3, 10..12, 13..14 (not c); 4..5, 20..26
    EXPECT_DOUBLE_EQ(s.fn("a")->self_s, 9 - 2 - 1);
    EXPECT_DOUBLE_EQ(s.fn("d")->self_s, 1 + 1); // 14..15 and 26..27: the resumed b's stretches are not d's
    ASSERT_TRUE(s.edge("a", "b"));              // its caller: who first started it
    EXPECT_EQ(s.edge("a", "b")->ncalls, 2u);
    EXPECT_FALSE(s.edge("d", "b"));
}

TEST(Agg, CoroutineParkedAtTheEndCloses_CpuClockLeavesSuspendedTimeOut) {
    const uint8_t S = YP_EV_SUSPEND, U = YP_EV_RESUME;
    for (int cpu = 0; cpu < 2; cpu++) {
        Agg g;
        yp_agg_set_clock(g.a, cpu ? YP_CLOCK_THREAD_CPU : YP_CLOCK_MONOTONIC);
        // b suspends at 2, resumes at 10 (running 2 more), suspends; stop at 20;
        // a RESUME with no name, and one with a name never parked: uncounted frames
        g.feed(1,
               {E(0, 2, C), Coro(2, 9), E(2, 2, S), Coro(10, 9), E(10, 2, U), Coro(12, 9), E(12, 2, S),
                E(13, 3, U), E(14, 3, S), Coro(15, 5), E(15, 1, U), E(16, 1, R), E(20, 0, YP_EV_REC_STOP)});
        Snap s(g.a);
        auto *b = s.fn("b");
        ASSERT_TRUE(b);
        EXPECT_EQ(b->ncalls, 1u);
        EXPECT_DOUBLE_EQ(b->self_s, 4);
        EXPECT_DOUBLE_EQ(b->awaited_s, cpu ? 0 : 16);
        EXPECT_DOUBLE_EQ(b->total_s, cpu ? 4 : 20);
        EXPECT_EQ(s.fn("c")->ncalls, 0u);
        EXPECT_EQ(s.fn("a")->ncalls, 0u);
        EXPECT_DOUBLE_EQ(s.fn("a")->total_s, 1);
    }
}

// Greenlets: each greenlet's frames are a stack of their own. Main (100)
// runs a, switches (c) to greenlet 200, whose b calls d and switches to 300,
// whose b switches back to main; main switches to 200 again, whose b ends;
// 300 is still switched out when recording stops. The time a greenlet is
// switched out is its open frames' awaited time (a CPU clock: not theirs).
static yp_event Switch(uint64_t ts, uint64_t g, bool from) {
    yp_event e = E(ts, 0, YP_EV_SWITCH);
    yp_event_set_coro(&e, yp_switch(from ? YP_SW_GLET_OUT : YP_SW_GLET_IN, g));
    return e;
}

TEST(Agg, GreenletsAreStacksOfTheirOwn) {
    const uint8_t CC = YP_EV_C_CALL, CR = YP_EV_C_RETURN;
    for (int cpu = 0; cpu < 2; cpu++) {
        Agg g;
        yp_agg_set_clock(g.a, cpu ? YP_CLOCK_THREAD_CPU : YP_CLOCK_MONOTONIC);
        g.feed(1, {E(0, 1, C),        E(1, 3, CC),       Switch(1, 100, true), Switch(1, 200, false),
                   E(1, 2, C),        E(2, 4, C),        E(3, 4, R),           E(4, 3, CC),
                   Switch(4, 200, 1), Switch(4, 300, 0), E(4, 2, C),           E(6, 3, CC),
                   Switch(6, 300, 1), Switch(6, 100, 0), E(6, 3, CR),          E(7, 3, CC),
                   Switch(8, 100, 1), Switch(8, 200, 0), E(8, 3, CR),          E(9, 2, R),
                   Switch(9, 200, 1), Switch(9, 100, 0), E(9, 3, CR),          E(10, 1, R)});
        {
            Snap live(g.a); // 300's frames close as if now (10): b 4..10, c 6..10
            EXPECT_EQ(live.fn("b")->ncalls, 2u);
            EXPECT_DOUBLE_EQ(live.fn("b")->total_s, cpu ? 4 + 2 : 8 + 6);
            EXPECT_EQ(live.s->threads[0].open_frames, 2u);
        }
        g.feed(1, {E(12, 0, YP_EV_REC_STOP)});
        Snap s(g.a);
        ASSERT_TRUE(s.fn("a") && s.fn("b") && s.fn("c") && s.fn("d"));
        const yp_fstat a = *s.fn("a"), b = *s.fn("b"), c = *s.fn("c"), d = *s.fn("d"); // fn's is one static
        EXPECT_EQ(a.ncalls, 1u);
        EXPECT_DOUBLE_EQ(a.self_s, 3); // 0..1, 6..7, 9..10
        EXPECT_DOUBLE_EQ(a.awaited_s, cpu ? 0 : 6);
        EXPECT_DOUBLE_EQ(a.total_s, cpu ? 4 : 10);
        EXPECT_EQ(b.ncalls, 2u);
        EXPECT_EQ(b.primitive_calls, 2u);  // 300's b while 200's is switched out: no recursion
        EXPECT_DOUBLE_EQ(b.self_s, 3 + 2); // 1..2, 3..4, 8..9; 4..6
        EXPECT_DOUBLE_EQ(b.awaited_s, cpu ? 0 : 4 + 6);
        EXPECT_DOUBLE_EQ(b.total_s, cpu ? 4 + 2 : 8 + 8);
        EXPECT_EQ(c.ncalls, 4u);
        EXPECT_DOUBLE_EQ(c.self_s, 1); // main's second switch: 7..8
        EXPECT_DOUBLE_EQ(c.total_s, cpu ? 1 : 5 + 4 + 2 + 6);
        EXPECT_EQ(d.ncalls, 1u);
        EXPECT_TRUE(s.edge("b", "d") && s.edge("b", "c") && s.edge("a", "c"));
        EXPECT_FALSE(s.edge("c", "b")); // a greenlet's first frame has no caller
        EXPECT_EQ(s.s->threads[0].unmatched, 0u);
        EXPECT_EQ(s.s->threads[0].open_frames, 0u);
    }
}

// Tasks: an asyncio task's row from its TASK_NEW to its root's return, its
// steps the root's stretches; a greenlet's from its first switch in to the
// switch out that says it ended. Task-7 (created at 0) runs b: 1..4, 10..12,
// 20..21; the task named by symbol 8 runs d from 30 and is suspended when
// recording stops at 40.
static yp_event Sw(uint64_t ts, unsigned sub, uint64_t val) {
    yp_event e = E(ts, 0, YP_EV_SWITCH);
    yp_event_set_coro(&e, yp_switch(sub, val));
    return e;
}

TEST(Agg, TasksAreRowsFromFirstStepToDone) {
    const uint8_t S = YP_EV_SUSPEND, U = YP_EV_RESUME;
    Agg g;
    yp_symbol name{8, 0, YP_SYM_TASK_NAME, "fetcher", "", ""};
    ASSERT_EQ(yp_agg_symbol(g.a, &name), YP_OK);
    g.feed(1, {E(0, 1, C),
               Sw(0, YP_SW_TASK_CREATED, 500),
               Sw(1, YP_SW_TASK_NAME, 7),
               Sw(1, YP_SW_TASK_OBJ, 500),
               Sw(1, YP_SW_TASK_NEW, 9),
               E(1, 2, C),
               E(2, 3, C),
               E(3, 3, R),
               Coro(4, 9),
               E(4, 2, S),
               Coro(10, 9),
               E(10, 2, U),
               Coro(12, 9),
               E(12, 2, S),
               Coro(20, 9),
               E(20, 2, U),
               E(21, 2, R),
               Sw(30, YP_SW_TASK_NAME, 8 | YP_SW_NAME_SYMBOL),
               Sw(30, YP_SW_TASK_NEW, 11),
               E(30, 4, C),
               Coro(31, 11),
               E(31, 4, S),
               E(40, 0, YP_EV_REC_STOP)});
    Snap s(g.a);
    ASSERT_EQ(s.s->n_tasks, 2u);
    const yp_task &a = s.s->tasks[0], &b = s.s->tasks[1];
    EXPECT_EQ(a.kind, (uint32_t)YP_TASK_ASYNCIO);
    EXPECT_EQ(a.number, 7u);
    EXPECT_EQ(a.name, UINT32_MAX);
    EXPECT_STREQ(s.s->funcs[a.func].name, "b");
    EXPECT_EQ(a.steps, 3u);
    EXPECT_DOUBLE_EQ(a.created_s, 0);
    EXPECT_DOUBLE_EQ(a.first_run_s, 1);
    EXPECT_DOUBLE_EQ(a.done_s, 21);
    EXPECT_DOUBLE_EQ(a.wall_s, 20);
    EXPECT_DOUBLE_EQ(a.active_s, 3 + 2 + 1);
    EXPECT_STREQ(s.s->funcs[b.name].name, "fetcher");
    EXPECT_STREQ(s.s->funcs[b.func].name, "d");
    EXPECT_DOUBLE_EQ(b.created_s, -1); // not seen
    EXPECT_DOUBLE_EQ(b.done_s, -1);    // still suspended
    EXPECT_EQ(b.steps, 1u);
    EXPECT_DOUBLE_EQ(b.active_s, 1);
    EXPECT_DOUBLE_EQ(b.wall_s, 10); // to the last event
    EXPECT_EQ(s.fn("b")->ncalls, 1u);
}

// clear_stats(): a done task's row goes, a suspended one's restarts and is
// still the one its coroutine's frame names (rows renumbered).
TEST(Agg, ClearDropsDoneTasksAndKeepsTheOthersLinked) {
    const uint8_t S = YP_EV_SUSPEND, U = YP_EV_RESUME;
    Agg g;
    g.feed(1, {Sw(1, YP_SW_TASK_NEW, 11), E(1, 4, C), E(2, 4, R), Sw(3, YP_SW_TASK_NEW, 9), E(3, 2, C),
               Coro(4, 9), E(4, 2, S)});
    {
        Snap s(g.a);
        ASSERT_EQ(s.s->n_tasks, 2u);
        EXPECT_DOUBLE_EQ(s.s->tasks[0].done_s, 1); // from the first event (1)
    }
    yp_agg_clear(g.a);
    g.feed(1, {Coro(10, 9), E(10, 2, U), E(12, 2, R)});
    Snap s(g.a);
    ASSERT_EQ(s.s->n_tasks, 1u);
    const yp_task &k = s.s->tasks[0];
    EXPECT_STREQ(s.s->funcs[k.func].name, "b");
    EXPECT_EQ(k.steps, 1u);
    EXPECT_DOUBLE_EQ(k.active_s, 2);
    EXPECT_DOUBLE_EQ(k.wall_s, 8); // from the clear (4) to its end (12)
    EXPECT_GE(k.done_s, 0);
}

TEST(Agg, GreenletsAreTaskRows) {
    const uint8_t CC = YP_EV_C_CALL, CR = YP_EV_C_RETURN;
    Agg g;
    // main (100) switches to 200 (runs b) at 1; 200 switches back at 3; main
    // switches to 200 again at 6; 200's b returns and it ends at 8
    g.feed(1, {E(0, 3, CC), Sw(1, YP_SW_GLET_OUT, 100), Sw(1, YP_SW_GLET_IN, 200), E(1, 2, C), E(2, 3, CC),
               Sw(3, YP_SW_GLET_OUT, 200), Sw(3, YP_SW_GLET_MAIN_IN, 100), E(3, 3, CR), E(5, 3, CC),
               Sw(6, YP_SW_GLET_OUT, 100), Sw(6, YP_SW_GLET_IN, 200), E(6, 3, CR), E(8, 2, R),
               Sw(8, YP_SW_GLET_OUT_DEAD, 200), Sw(8, YP_SW_GLET_MAIN_IN, 100), E(8, 3, CR)});
    Snap s(g.a);
    ASSERT_EQ(s.s->n_tasks, 1u); // the main greenlet is not a task
    const yp_task &k = s.s->tasks[0];
    EXPECT_EQ(k.kind, (uint32_t)YP_TASK_GREENLET);
    EXPECT_STREQ(s.s->funcs[k.func].name, "b");
    EXPECT_EQ(k.steps, 2u);
    EXPECT_DOUBLE_EQ(k.first_run_s, 1);
    EXPECT_DOUBLE_EQ(k.done_s, 8);
    EXPECT_DOUBLE_EQ(k.wall_s, 7);
    EXPECT_DOUBLE_EQ(k.active_s, 2 + 2);
    EXPECT_EQ(s.fn("b")->ncalls, 1u);
    EXPECT_EQ(s.fn("c")->ncalls, 3u);
}

// A greenlet that opens no frame before it is switched out (its code is C)
// has no root function; the next greenlet's first frame is not its root.
TEST(Agg, AGreenletWithNoFrameHasNoRootFunction) {
    const uint8_t MI = YP_SW_GLET_MAIN_IN;
    Agg g; // 300 runs b; 200 runs no frame; 300 comes back and calls c
    g.feed(1, {Sw(0, YP_SW_GLET_OUT, 100), Sw(0, YP_SW_GLET_IN, 300), E(0, 2, C), Sw(1, YP_SW_GLET_OUT, 300),
               Sw(1, MI, 100), Sw(2, YP_SW_GLET_OUT, 100), Sw(2, YP_SW_GLET_IN, 200),
               Sw(3, YP_SW_GLET_OUT, 200), Sw(3, MI, 100), Sw(4, YP_SW_GLET_OUT, 100),
               Sw(4, YP_SW_GLET_IN, 300), E(4, 3, C), E(5, 3, R), E(6, 2, R)});
    Snap s(g.a);
    ASSERT_EQ(s.s->n_tasks, 2u);
    EXPECT_STREQ(s.s->funcs[s.s->tasks[0].func].name, "b");
    EXPECT_EQ(s.s->tasks[1].func, UINT32_MAX);
}

// A switch that does not name the greenlet left closes its frames.
TEST(Agg, SwitchWithoutItsOriginClosesTheFrames) {
    Agg g;
    g.feed(1,
           {E(0, 1, C), E(1, 2, C), Switch(2, 300, false), E(3, 4, C), E(4, 4, R), E(5, 2, R), E(6, 1, R)});
    Snap s(g.a);
    EXPECT_DOUBLE_EQ(s.fn("b")->total_s, 1);
    EXPECT_DOUBLE_EQ(s.fn("a")->total_s, 2);
    EXPECT_EQ(s.fn("d")->ncalls, 1u);
    EXPECT_EQ(s.s->threads[0].unmatched, 2u);
}

// Tags: a frame counts under the tag in effect when it opened; an interval's
// end puts it back to none.
TEST(Agg, TaggedCallsCountUnderTheirTag) {
    Agg g;
    yp_symbol t{9, 0, YP_SYM_TAG_STR, "req", "", ""};
    ASSERT_EQ(yp_agg_symbol(g.a, &t), YP_OK);
    const uint8_t T = YP_EV_TAG;
    g.feed(1, {E(0, 9, T), E(0, 1, C), E(1, 2, C), E(3, 2, R), E(4, 0, T), E(5, 2, C), E(6, 2, R), E(8, 1, R),
               E(9, 9, T), E(9, 0, YP_EV_REC_STOP), E(10, 2, C), E(11, 2, R)});
    Snap s(g.a);
    ASSERT_EQ(s.s->n_tagstats, 2u);
    for (size_t i = 0; i < s.s->n_tagstats; i++) {
        const yp_tagstat &r = s.s->tagstats[i];
        EXPECT_STREQ(s.s->funcs[r.tag].name, "req");
        EXPECT_EQ(s.s->funcs[r.tag].builtin, YP_SYM_TAG_STR);
        const char *fn = s.s->funcs[r.f.func].name;
        EXPECT_EQ(r.f.ncalls, 1u) << fn;
        EXPECT_DOUBLE_EQ(r.f.total_s, !strcmp(fn, "a") ? 8 : 2) << fn; // b's untagged call at 5 is not here
        EXPECT_DOUBLE_EQ(r.root_s, !strcmp(fn, "a") ? 8 : 0) << fn; // a began the tag's work; b's caller is a
    }
    EXPECT_EQ(s.fn("b")->ncalls, 3u); // all of them, tagged or not
}

// A tag's wall time: its calls whose caller is under another tag or none.
// An untagged a calls b under x (a root), b calls c under y (a root) and d
// under x twice: first from c (a root), then from b (not one).
TEST(Agg, TagRootsAreCallsWhoseCallerIsUnderAnotherTag) {
    Agg g;
    yp_symbol x{8, 0, YP_SYM_TAG_STR, "x", "", ""}, y{9, 0, YP_SYM_TAG_INT, "7", "", ""};
    ASSERT_EQ(yp_agg_symbol(g.a, &x), YP_OK);
    ASSERT_EQ(yp_agg_symbol(g.a, &y), YP_OK);
    const uint8_t T = YP_EV_TAG;
    g.feed(1, {E(0, 1, C), E(1, 8, T), E(1, 2, C), E(2, 9, T), E(2, 3, C), E(3, 8, T), E(3, 4, C), E(5, 4, R),
               E(6, 3, R), E(7, 4, C), E(8, 4, R), E(9, 2, R), E(10, 0, T), E(10, 1, R)});
    Snap s(g.a);
    std::map<std::string, double> root, total;
    for (size_t i = 0; i < s.s->n_tagstats; i++) {
        const yp_tagstat &r = s.s->tagstats[i];
        std::string key = std::string(s.s->funcs[r.tag].name) + "/" + s.s->funcs[r.f.func].name;
        root[key] += r.root_s;
        total[key] += r.f.total_s;
    }
    EXPECT_DOUBLE_EQ(root["x/b"], 8);  // 1..9: its caller a has no tag
    EXPECT_DOUBLE_EQ(root["7/c"], 4);  // 2..6: its caller b is under x
    EXPECT_DOUBLE_EQ(root["x/d"], 2);  // 3..5 (caller c under 7); not 7..8 (caller b under x)
    EXPECT_DOUBLE_EQ(total["x/d"], 3); // both
}

// The time the threads ran Python code (pollution's bytecode term): each
// thread's wall time less its C functions' self time and event_ns per
// event, when positive; a thread blocked in C all along runs none.
TEST(Agg, CodeTimeIsEachThreadsWallLessItsCFunctionsAndEvents) {
    Agg g;
    yp_symbol sleep{5, 0, 1, "sleep", "time", ""};
    yp_agg_symbol(g.a, &sleep);
    const uint8_t CC = YP_EV_C_CALL, CR = YP_EV_C_RETURN;
    g.feed(1, {E(0, 1, C), E(1, 5, CC), E(91, 5, CR), E(100, 1, R)});  // 10 s of Python, 90 in C
    g.feed(2, {E(0, 2, C), E(100, 2, R)});                             // 100 s of Python
    g.feed(3, {E(0, 3, C), E(0, 5, CC), E(100, 5, CR), E(100, 3, R)}); // blocked in C
    EXPECT_EQ(yp_agg_code_ns(g.a, 0), 110000000000u);
    EXPECT_EQ(yp_agg_code_ns(g.a, 1e9), 104000000000u); // 10 - 4 events, 100 - 2, 0 - 4: none
}

TEST(Agg, SimpleChain) {
    Agg g;
    g.feed(1, {E(0, 1, C), E(10, 2, C), E(15, 3, C), E(18, 3, R), E(30, 2, R), E(35, 1, R)});
    Snap s(g.a);
    auto *a = s.fn("a");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->ncalls, 1u);
    EXPECT_DOUBLE_EQ(a->total_s, 35);
    EXPECT_DOUBLE_EQ(a->self_s, 15);
    EXPECT_DOUBLE_EQ(s.fn("b")->total_s, 20);
    EXPECT_DOUBLE_EQ(s.fn("b")->self_s, 17);
    EXPECT_DOUBLE_EQ(s.fn("c")->self_s, 3);
    ASSERT_TRUE(s.edge("a", "b"));
    EXPECT_EQ(s.edge("a", "b")->ncalls, 1u);
    EXPECT_FALSE(s.edge("a", "c"));
    EXPECT_EQ(s.s->n_nodes, 3u);
    EXPECT_DOUBLE_EQ(s.s->threads[0].wall_s, 35);
}

// a->b->c->a->b->c->a: cumulative time counts each outermost activation once.
TEST(Agg, MutualRecursionCountsOutermostOnce) {
    Agg g;
    g.feed(1,
           {E(0, 1, C), E(10, 2, C), E(20, 3, C), E(30, 1, C), E(40, 2, C), E(50, 3, C), E(60, 1, C),
            E(70, 1, R), E(80, 3, R), E(90, 2, R), E(100, 1, R), E(110, 3, R), E(120, 2, R), E(130, 1, R)});
    Snap s(g.a);
    auto a = *s.fn("a");
    EXPECT_EQ(a.ncalls, 3u);
    EXPECT_EQ(a.primitive_calls, 1u);
    EXPECT_DOUBLE_EQ(a.self_s, 50);
    EXPECT_DOUBLE_EQ(a.total_s, 130);
    auto b = *s.fn("b");
    EXPECT_EQ(b.ncalls, 2u);
    EXPECT_EQ(b.primitive_calls, 1u);
    EXPECT_DOUBLE_EQ(b.self_s, 40);
    EXPECT_DOUBLE_EQ(b.total_s, 110);
    auto c = *s.fn("c");
    EXPECT_DOUBLE_EQ(c.self_s, 40);
    EXPECT_DOUBLE_EQ(c.total_s, 90);
    const yp_edge *ab = s.edge("a", "b");
    ASSERT_TRUE(ab);
    EXPECT_EQ(ab->ncalls, 2u);
    EXPECT_EQ(ab->primitive_calls, 1u);
    EXPECT_DOUBLE_EQ(ab->total_s, 110);
    const yp_edge *ca = s.edge("c", "a");
    EXPECT_EQ(ca->ncalls, 2u);
    EXPECT_DOUBLE_EQ(ca->total_s, 70);
    // self times add up to the root's inclusive time
    double self = 0;
    for (size_t i = 0; i < s.s->n_fstats; i++) self += s.s->fstats[i].self_s;
    EXPECT_DOUBLE_EQ(self, 130);
    EXPECT_EQ(s.s->n_nodes, 7u); // every depth is its own call path
}

TEST(Agg, DirectRecursion) {
    Agg g;
    // a calls itself 3 deep
    g.feed(1, {E(0, 1, C), E(1, 1, C), E(2, 1, C), E(5, 1, R), E(7, 1, R), E(10, 1, R)});
    Snap s(g.a);
    EXPECT_EQ(s.fn("a")->ncalls, 3u);
    EXPECT_EQ(s.fn("a")->primitive_calls, 1u);
    EXPECT_DOUBLE_EQ(s.fn("a")->total_s, 10);
    EXPECT_DOUBLE_EQ(s.fn("a")->self_s, 10);
}

TEST(Agg, UnbalancedStartAndOpenFramesAtTheEnd) {
    Agg g;
    // returns of frames entered before recording, then a frame left open
    g.feed(1, {E(0, 3, R), E(1, 4, R), E(2, 1, C), E(4, 2, C), E(9, 2, R), E(20, 3, C)});
    Snap s(g.a);
    EXPECT_EQ(s.s->threads[0].unmatched, 2u);
    EXPECT_EQ(s.s->threads[0].open_frames, 2u);
    EXPECT_EQ(s.fn("a")->ncalls, 1u); // closed at the last event, as cProfile's disable()
    EXPECT_DOUBLE_EQ(s.fn("a")->total_s, 18);
    EXPECT_DOUBLE_EQ(s.fn("c")->total_s, 0);
    // the snapshot changed nothing: the frame closes later for real
    g.feed(1, {E(25, 3, R), E(30, 1, R)});
    Snap s2(g.a);
    EXPECT_EQ(s2.fn("a")->ncalls, 1u);
    EXPECT_DOUBLE_EQ(s2.fn("a")->total_s, 28);
    EXPECT_EQ(s2.fn("c")->ncalls, 1u);
    EXPECT_DOUBLE_EQ(s2.fn("c")->total_s, 5);
    EXPECT_EQ(s2.s->threads[0].open_frames, 0u);
}

TEST(Agg, FramesOpenAtStartAreTimedNotCounted) {
    Agg g;
    g.feed(1, {E(0, 1, YP_EV_OPEN), E(5, 2, C), E(8, 2, R), E(10, 1, R)});
    Snap s(g.a);
    EXPECT_EQ(s.fn("a")->ncalls, 0u);
    EXPECT_DOUBLE_EQ(s.fn("a")->total_s, 10);
    EXPECT_DOUBLE_EQ(s.fn("a")->self_s, 7);
    ASSERT_TRUE(s.edge("a", "b"));
    EXPECT_EQ(s.edge("a", "b")->ncalls, 1u);
}

TEST(Agg, IntervalsDoNotCountTimeWhileStopped) {
    Agg g;
    g.feed(1, {E(0, 0, YP_EV_REC_START), E(0, 1, C), E(10, 0, YP_EV_REC_STOP), E(100, 0, YP_EV_REC_START),
               E(100, 2, C), E(105, 2, R), E(110, 1, R)});
    Snap s(g.a);
    EXPECT_EQ(s.fn("a")->ncalls, 1u);
    EXPECT_DOUBLE_EQ(s.fn("a")->total_s, 10);
    EXPECT_DOUBLE_EQ(s.fn("b")->total_s, 5);
    EXPECT_EQ(s.s->threads[0].unmatched, 1u);
    EXPECT_DOUBLE_EQ(s.s->threads[0].wall_s, 20);
}

TEST(Agg, DroppedEventsCloseTheStackAndAreCounted) {
    Agg g;
    g.feed(1, {E(0, 1, C), E(5, 2, C), E(10, 7, YP_EV_DROPPED), E(12, 2, R), E(14, 1, R)});
    g.feed(1, {E(20, 3, C), E(21, 3, R)}, 5); // 5 more lost before this chunk
    Snap s(g.a);
    EXPECT_EQ(s.s->threads[0].dropped, 12u);
    EXPECT_EQ(s.s->session.dropped_events, 12u);
    EXPECT_DOUBLE_EQ(s.fn("a")->total_s, 10);
    EXPECT_DOUBLE_EQ(s.fn("b")->total_s, 5);
    EXPECT_EQ(s.fn("c")->ncalls, 1u);
}

TEST(Agg, SeveralThreadsAreSeparateAndSum) {
    Agg g;
    yp_thread_info t1{1, 111, 11, 0, "main"}, t2{2, 222, 22, 5000000000ull, "worker"};
    yp_agg_thread(g.a, &t1);
    yp_agg_thread(g.a, &t2);
    g.feed(1, {E(0, 1, C), E(4, 1, R)});
    g.feed(2, {E(1, 1, C), E(2, 2, C)}); // interleaved in time, separate stacks
    g.feed(1, {E(5, 1, C), E(6, 1, R)});
    g.feed(2, {E(3, 2, R), E(9, 1, R)});
    Snap s(g.a);
    ASSERT_EQ(s.s->n_threads, 2u);
    EXPECT_EQ(s.fn("a", 0)->ncalls, 2u);
    EXPECT_DOUBLE_EQ(s.fn("a", 0)->total_s, 5);
    EXPECT_EQ(s.fn("a", 1)->ncalls, 1u);
    EXPECT_DOUBLE_EQ(s.fn("a", 1)->total_s, 8);
    EXPECT_EQ(s.fn("a")->ncalls, 3u);
    EXPECT_DOUBLE_EQ(s.fn("a")->total_s, 13);
    EXPECT_STREQ(s.s->threads[1].name, "worker");
    EXPECT_EQ(s.s->threads[1].ident, 222u);
    EXPECT_DOUBLE_EQ(s.s->threads[1].cpu_s, 5.0);
    size_t n;
    yp_fstat *tot = yp_stats_totals(s.s, UINT32_MAX, YP_SORT_NCALLS, &n);
    ASSERT_EQ(n, 2u);
    EXPECT_STREQ(s.s->funcs[tot[0].func].name, "a");
    free(tot);
}

TEST(Agg, ClearRestartsCountsKeepsStacks) {
    Agg g;
    g.feed(1, {E(0, 1, C), E(1, 2, C), E(2, 2, R), E(3, 2, C)});
    yp_agg_clear(g.a);
    g.feed(1, {E(5, 2, R), E(6, 2, C), E(7, 2, R), E(9, 1, R)});
    Snap s(g.a);
    EXPECT_EQ(s.fn("b")->ncalls, 1u); // the one open at the clear is not a call
    EXPECT_DOUBLE_EQ(s.fn("b")->total_s, 3);
    EXPECT_EQ(s.fn("a")->ncalls, 0u);
    EXPECT_DOUBLE_EQ(s.fn("a")->total_s, 6);
    EXPECT_EQ(s.s->session.events, 4u);
}

TEST(Agg, MemoryIsIndependentOfEventCount) {
    Agg g;
    std::vector<yp_event> ev;
    uint64_t ts = 0;
    for (int i = 0; i < 100000; i++) {
        ev.push_back(E(ts++, 1 + i % 4, C));
        ev.push_back(E(ts++, 1 + i % 4, R));
    }
    g.feed(1, ev);
    uint64_t b1 = yp_agg_bytes(g.a);
    for (int k = 0; k < 50; k++) {
        for (auto &e : ev) e.ts += 200000;
        g.feed(1, ev);
    }
    EXPECT_EQ(yp_agg_bytes(g.a), b1); // 10M more events, not one byte more
    EXPECT_EQ(yp_agg_events_seen(g.a), 51u * 200000u);
}

TEST(Agg, UnknownFunctionIdsGetAName) {
    Agg g;
    g.feed(1, {E(0, 99, C), E(1, 99, R)});
    Snap s(g.a);
    ASSERT_TRUE(s.fn("<unknown function #99>"));
}

// A naive model of the same accounting (cProfile's rules, maps keyed by
// function and by caller/callee pair, call paths as strings), against which
// the aggregator's index caches must agree on every random program.
struct Model {
    struct St {
        uint64_t ncalls = 0, prim = 0, self = 0, total = 0;
        int active = 0;
    };
    struct Fr {
        uint32_t f;
        uint64_t start, child = 0;
    };
    std::map<uint32_t, St> fn;
    std::map<std::pair<uint32_t, uint32_t>, St> ed;
    std::set<std::vector<uint32_t>> paths;
    std::vector<Fr> stack;
    void call(uint32_t f, uint64_t ts) {
        St &s = fn[f];
        s.ncalls++;
        s.prim += s.active == 0;
        s.active++;
        if (!stack.empty()) {
            St &e = ed[{stack.back().f, f}];
            e.ncalls++;
            e.prim += e.active == 0;
            e.active++;
        }
        stack.push_back({f, ts});
        std::vector<uint32_t> path;
        for (auto &x : stack) path.push_back(x.f);
        paths.insert(path);
    }
    void ret(uint64_t ts) {
        Fr fr = stack.back();
        stack.pop_back();
        uint64_t el = ts - fr.start, self = el - fr.child;
        St &s = fn[fr.f];
        s.self += self;
        if (--s.active == 0) s.total += el;
        if (!stack.empty()) {
            St &e = ed[{stack.back().f, fr.f}];
            e.self += self;
            if (--e.active == 0) e.total += el;
            stack.back().child += el;
        }
    }
};

TEST(Agg, RandomProgramsMatchANaiveModel) {
    std::mt19937 rng(12345);
    for (int prog = 0; prog < 200; prog++) {
        Agg g;
        Model m;
        std::vector<yp_event> ev;
        uint64_t ts = 0;
        int n = 50 + (int)(rng() % 400);
        for (int i = 0; i < n || !m.stack.empty(); i++) {
            ts += 1 + rng() % 7;
            bool call = i < n && (m.stack.empty() || (m.stack.size() < 6 && rng() % 2));
            if (call) {
                uint32_t f = 1 + rng() % 4; // recursion, loops and repeated paths all happen
                m.call(f, ts);
                ev.push_back(E(ts, f, C));
            } else {
                ev.push_back(E(ts, m.stack.back().f, R));
                m.ret(ts);
            }
            if (rng() % 64 == 0) { // batch boundaries anywhere
                g.feed(1, ev);
                ev.clear();
            }
        }
        g.feed(1, ev);
        Snap s(g.a);
        const char *names[] = {"", "a", "b", "c", "d"};
        for (auto &kv : m.fn) {
            const yp_fstat *f = s.fn(names[kv.first]);
            ASSERT_TRUE(f) << "program " << prog;
            EXPECT_EQ(f->ncalls, kv.second.ncalls) << "program " << prog << " " << names[kv.first];
            EXPECT_EQ(f->primitive_calls, kv.second.prim) << "program " << prog;
            EXPECT_DOUBLE_EQ(f->self_s, (double)kv.second.self) << "program " << prog;
            EXPECT_DOUBLE_EQ(f->total_s, (double)kv.second.total) << "program " << prog;
        }
        ASSERT_EQ(s.s->n_edges, m.ed.size()) << "program " << prog;
        for (auto &kv : m.ed) {
            const yp_edge *e = s.edge(names[kv.first.first], names[kv.first.second]);
            ASSERT_TRUE(e) << "program " << prog;
            EXPECT_EQ(e->ncalls, kv.second.ncalls) << "program " << prog;
            EXPECT_EQ(e->primitive_calls, kv.second.prim) << "program " << prog;
            EXPECT_DOUBLE_EQ(e->self_s, (double)kv.second.self) << "program " << prog;
            EXPECT_DOUBLE_EQ(e->total_s, (double)kv.second.total) << "program " << prog;
        }
        EXPECT_EQ(s.s->n_nodes, m.paths.size()) << "program " << prog;
    }
}

// Thousands of call paths: the aggregator then loads call-tree slots ahead of
// time (yp_agg_events' look-ahead), and guesses the caller of a call 16
// events ahead; returns that close two frames at once (an exception leaving
// both) make some of those guesses wrong. Statistics must not change.
TEST(Agg, ManyPathsMatchANaiveModel) {
    std::mt19937 rng(777);
    Agg g;
    Model m;
    std::vector<yp_event> ev;
    uint64_t ts = 0;
    for (int i = 0; i < 120000 || !m.stack.empty(); i++) {
        ts += 1 + rng() % 7;
        bool call = i < 120000 && (m.stack.empty() || (m.stack.size() < 6 && rng() % 2));
        if (call) {
            uint32_t f = 100 + rng() % 3000; // ids 1-4 have names (Agg)
            m.call(f, ts);
            ev.push_back(E(ts, f, C));
        } else if (m.stack.size() >= 2 && m.stack.back().f != m.stack[m.stack.size() - 2].f &&
                   rng() % 8 == 0) { // unwinds two frames (the return names the lower one)
            ev.push_back(E(ts, m.stack[m.stack.size() - 2].f, R));
            m.ret(ts);
            m.ret(ts);
        } else {
            ev.push_back(E(ts, m.stack.back().f, R));
            m.ret(ts);
        }
        if (rng() % 1024 == 0) {
            g.feed(1, ev);
            ev.clear();
        }
    }
    g.feed(1, ev);
    Snap s(g.a);
    ASSERT_GT(m.paths.size(), 20000u); // far more than the look-ahead's threshold (8,192 paths)
    EXPECT_EQ(s.s->n_nodes, m.paths.size());
    auto id_of = [&](uint32_t func) {
        uint32_t id = 0;
        sscanf(s.s->funcs[func].name, "<unknown function #%u>", &id);
        return id;
    };
    std::map<uint32_t, const yp_fstat *> fs;
    for (size_t i = 0; i < s.s->n_fstats; i++) fs[id_of(s.s->fstats[i].func)] = &s.s->fstats[i];
    ASSERT_EQ(fs.size(), m.fn.size());
    for (auto &kv : m.fn) {
        const yp_fstat *f = fs[kv.first];
        ASSERT_TRUE(f) << kv.first;
        EXPECT_EQ(f->ncalls, kv.second.ncalls) << kv.first;
        EXPECT_EQ(f->primitive_calls, kv.second.prim) << kv.first;
        EXPECT_DOUBLE_EQ(f->self_s, (double)kv.second.self) << kv.first;
        EXPECT_DOUBLE_EQ(f->total_s, (double)kv.second.total) << kv.first;
    }
    std::map<std::pair<uint32_t, uint32_t>, const yp_edge *> es;
    for (size_t i = 0; i < s.s->n_edges; i++)
        es[{id_of(s.s->edges[i].caller), id_of(s.s->edges[i].callee)}] = &s.s->edges[i];
    ASSERT_EQ(es.size(), m.ed.size());
    for (auto &kv : m.ed) {
        const yp_edge *e = es[kv.first];
        ASSERT_TRUE(e);
        EXPECT_EQ(e->ncalls, kv.second.ncalls);
        EXPECT_EQ(e->primitive_calls, kv.second.prim);
        EXPECT_DOUBLE_EQ(e->self_s, (double)kv.second.self);
        EXPECT_DOUBLE_EQ(e->total_s, (double)kv.second.total);
    }
}

// clear_stats() forgets threads that have ended (a server replacing its
// threads keeps the live stats O(live threads)); live ones stay, with their
// open frames, and go on counting.
TEST(Agg, ClearForgetsEndedThreadsKeepsLiveOnes) {
    Agg g;
    g.feed(1, {E(0, 1, C), E(5, 1, R), E(6, 0, YP_EV_THREAD_END)});
    g.feed(2, {E(0, 2, C), E(3, 3, C), E(4, 3, R)});
    g.feed(3, {E(0, 4, C), E(1, 0, YP_EV_THREAD_END)}); // ended: its frame closed at the end
    yp_agg_clear(g.a);
    g.feed(2, {E(10, 3, C), E(12, 3, R), E(20, 2, R)});
    Snap s(g.a);
    ASSERT_EQ(s.s->n_threads, 1u);
    EXPECT_EQ(s.s->threads[0].id, 2u);
    EXPECT_FALSE(s.fn("a"));
    EXPECT_EQ(s.fn("c")->ncalls, 1u);
    EXPECT_EQ(s.fn("b")->ncalls, 0u); // open when cleared: timed, not counted
    EXPECT_DOUBLE_EQ(s.fn("b")->total_s, 16);
}

// A hole in a thread's stream (a damaged chunk) ends its open frames at its
// last event and counts the events lost, as a DROPPED record does.
TEST(Agg, GapClosesFramesAndCountsLostEvents) {
    Agg g;
    g.feed(1, {E(0, 1, C), E(2, 2, C)});
    ASSERT_EQ(yp_agg_gap(g.a, 1, 1800), YP_OK);
    g.feed(1, {E(50, 2, R), E(60, 1, R), E(61, 3, C), E(62, 3, R)});
    Snap s(g.a);
    EXPECT_DOUBLE_EQ(s.fn("a")->total_s, 2); // not 60: the frame ended at the hole
    EXPECT_EQ(s.fn("a")->ncalls, 1u);
    EXPECT_EQ(s.fn("c")->ncalls, 1u);
    EXPECT_EQ(s.s->threads[0].dropped, 1800u);
    EXPECT_EQ(s.s->threads[0].unmatched, 2u); // the returns after the hole
}

} // namespace

// ---- yp_stats_merge ---------------------------------------------------------

// One process's statistics: Agg's functions a, b, c, d of /m.py, plus (when
// dup) id 5, another code object of the same a (a second exec of the same
// source): a calls b; then the duplicate runs once.
static yp_stats *process_stats(uint64_t pid, uint64_t t0, bool dup) {
    Agg g;
    if (dup) {
        yp_symbol s{5, 10, 0, "a", "m", "/m.py"};
        yp_agg_symbol(g.a, &s);
    }
    yp_thread_info t{1, 100 + pid, pid, 0, "MainThread"};
    yp_agg_thread(g.a, &t);
    std::vector<yp_event> ev = {E(t0, 1, C), E(t0 + 1, 2, C), E(t0 + 3, 2, R), E(t0 + 4, 1, R)};
    if (dup) ev.insert(ev.end(), {E(t0 + 5, 5, C), E(t0 + 7, 5, R)});
    g.feed(1, ev);
    yp_stats *s = yp_agg_snapshot(g.a);
    yp_load_result res;
    memset(&res, 0, sizeof res);
    res.hdr.pid = (uint32_t)pid;
    res.hdr.ppid = 7;
    res.hdr.start_wall_ns = t0 * 1000000000ull;
    res.foot.hook_ns = 1000000000ull; // 1 s
    res.foot.app_ns = 10000000000ull; // 10 s
    res.has_footer = 1;
    yp_stats_set_session(s, "p.yp", &res);
    s->session.duration_s = 4;
    return s;
}

TEST(Merge, ProcessesShareFunctionsKeepThreadsAndSumTheSession) {
    yp_stats *p1 = process_stats(10, 0, false), *p2 = process_stats(20, 100, true);
    yp_stats *p3 = process_stats(30, 50, false);
    yp_stats *m12 = yp_stats_merge(p1, p2);
    ASSERT_NE(m12, nullptr);
    yp_stats *m = yp_stats_merge(m12, p3);
    ASSERT_NE(m, nullptr);
    Snap s(m);
    // each function once however many processes (and code objects) had it
    ASSERT_EQ(s.s->n_funcs, 4u);
    EXPECT_EQ(s.fn("a")->ncalls, 4u); // 1 + (1 + 1 duplicate) + 1
    EXPECT_DOUBLE_EQ(s.fn("a")->total_s, 4 + 4 + 2 + 4);
    EXPECT_EQ(s.fn("b")->ncalls, 3u);
    // the duplicate's row is summed into a's row of process 20's thread
    ASSERT_EQ(s.s->n_threads, 3u);
    EXPECT_EQ(s.fn("a", 1)->ncalls, 2u);
    size_t rows_a1 = 0;
    for (size_t i = 0; i < s.s->n_fstats; i++)
        rows_a1 += s.s->fstats[i].thread == 1 && !strcmp(s.s->funcs[s.s->fstats[i].func].name, "a");
    EXPECT_EQ(rows_a1, 1u);
    EXPECT_EQ(s.edge("a", "b")->ncalls, 1u); // per thread: each process's own
    // threads renumbered, each with its process
    for (uint32_t i = 0; i < 3; i++) {
        EXPECT_EQ(s.s->threads[i].id, i + 1);
        EXPECT_EQ(s.s->threads[i].process, i);
    }
    ASSERT_EQ(yp_stats_n_procs(s.s), 3u);
    EXPECT_EQ(yp_stats_proc(s.s, 1)->pid, 20u);
    EXPECT_EQ(yp_stats_proc(s.s, 2)->ppid, 7u);
    EXPECT_EQ(s.s->threads[2].native_id, 30u);
    // call-tree parents point into the same process's nodes
    for (size_t i = 0; i < s.s->n_nodes; i++) {
        const yp_node &n = s.s->nodes[i];
        if (n.parent == UINT32_MAX) continue;
        ASSERT_LT(n.parent, i);
        EXPECT_EQ(s.s->nodes[n.parent].thread, n.thread);
        EXPECT_STREQ(s.s->funcs[n.func].name, "b");
    }
    // the session: earliest start, to the end of the last; sums
    EXPECT_DOUBLE_EQ(s.s->session.started_at, 0);
    EXPECT_DOUBLE_EQ(s.s->session.duration_s, 104);
    EXPECT_EQ(s.s->session.events, p1->session.events + p2->session.events + p3->session.events);
    EXPECT_DOUBLE_EQ(s.s->session.hook_s, 3);
    EXPECT_DOUBLE_EQ(s.s->session.pollution_pct, 10);
    EXPECT_EQ(s.s->session.pid, 10u);
    EXPECT_EQ(s.s->session.complete, 1);
    yp_stats_free(p1);
    yp_stats_free(m12);
    yp_stats_free(p2);
    yp_stats_free(p3);
}
