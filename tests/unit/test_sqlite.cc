// The SQLite writer: every table of docs/schema.md, read back with SQL.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstring>
#include <string>
#include <vector>

#include "yp_test_util.h"
#include "yprof/analyze.h"

namespace {

double q1(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, nullptr), SQLITE_OK) << sql << ": " << sqlite3_errmsg(db);
    double v = -1;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}

std::string qs(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, nullptr), SQLITE_OK) << sql;
    std::string v;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        v = (const char *)sqlite3_column_text(st, 0);
    sqlite3_finalize(st);
    return v;
}

TEST(Sqlite, WritesTheDocumentedSchema) {
    yp_agg *a = yp_agg_new();
    yp_agg_set_ns_per_tick(a, 1e6); // 1 tick = 1 ms
    yp_symbol s1{1, 5, 0, "Server.handle", "server", "/srv/server.py"};
    yp_symbol s2{2, 0, 1, "list.append", "builtins", ""};
    yp_agg_symbol(a, &s1);
    yp_agg_symbol(a, &s2);
    yp_thread_info t1{1, 77, 7, 0, "MainThread"}, t2{2, 88, 8, 0, "worker-1"};
    yp_agg_thread(a, &t1);
    yp_agg_thread(a, &t2);
    std::vector<yp_event> ev1 = {E(0, 1, YP_EV_CALL), E(1, 2, YP_EV_C_CALL), E(3, 2, YP_EV_C_RETURN),
                                 E(10, 1, YP_EV_RETURN)};
    std::vector<yp_event> ev2 = {E(0, 1, YP_EV_CALL), E(4, 1, YP_EV_RETURN), E(5, 1, YP_EV_CALL),
                                 E(9, 1, YP_EV_RETURN)};
    yp_agg_events(a, 1, ev1.data(), ev1.size(), 0);
    yp_agg_events(a, 2, ev2.data(), ev2.size(), 0);
    yp_stats *s = yp_agg_snapshot(a);
    yp_load_result res{};
    res.hdr.python_version = "3.11.7";
    res.hdr.command_line = "python srv.py";
    res.foot.hook_ns = 1000000;
    res.foot.flusher_ns = 3000000;
    res.foot.app_ns = 10000000;
    res.has_footer = 1;
    yp_stats_set_session(s, "/tmp/t.yp", &res);
    std::string path = std::string(::testing::TempDir()) + "yp_sqlite_" + std::to_string(getpid()) + ".db";
    char err[256];
    ASSERT_EQ(yp_sqlite_write(s, path.c_str(), err, sizeof err), YP_OK) << err;
    ASSERT_EQ(yp_sqlite_write(s, path.c_str(), err, sizeof err), YP_OK) << "rewrite replaces";
    sqlite3 *db;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    EXPECT_EQ(q1(db, "PRAGMA user_version"), YP_SCHEMA_VERSION);
    EXPECT_EQ(q1(db, "SELECT count(*) FROM session"), 1);
    EXPECT_EQ(qs(db, "SELECT python_version FROM session"), "3.11.7");
    EXPECT_EQ(q1(db, "SELECT events FROM session"), 8);
    EXPECT_DOUBLE_EQ(q1(db, "SELECT pollution_pct FROM session"), 10.0); // the flusher's is apart
    EXPECT_DOUBLE_EQ(q1(db, "SELECT flusher_pct FROM session"), 30.0);
    EXPECT_EQ(q1(db, "SELECT count(*) FROM threads"), 2);
    EXPECT_EQ(qs(db, "SELECT name FROM threads WHERE native_id = 8"), "worker-1");
    EXPECT_EQ(q1(db, "SELECT builtin FROM functions WHERE name = 'list.append'"), 1);
    EXPECT_EQ(q1(db, "SELECT ncalls FROM function_totals WHERE name = 'Server.handle'"), 3);
    EXPECT_NEAR(q1(db, "SELECT total_s FROM function_totals WHERE name = 'Server.handle'"), 0.018, 1e-12);
    EXPECT_NEAR(q1(db, "SELECT self_s FROM function_stats WHERE function_id = 1 AND thread_id = 1"), 0.008,
                1e-12);
    EXPECT_EQ(q1(db, "SELECT ncalls FROM edges WHERE caller_id = 1 AND callee_id = 2"), 1);
    EXPECT_EQ(q1(db, "SELECT count(*) FROM call_tree WHERE parent_id IS NULL"), 2);
    EXPECT_EQ(q1(db, "SELECT depth FROM call_tree WHERE function_id = 2"), 1);
    sqlite3_close(db);
    yp_stats_free(s);
    yp_agg_free(a);
    remove(path.c_str());
}

TEST(Sqlite, UnwritablePathIsAnErrorWithText) {
    yp_agg *a = yp_agg_new();
    yp_stats *s = yp_agg_snapshot(a);
    char err[256] = "";
    EXPECT_EQ(yp_sqlite_write(s, "/nonexistent/dir/x.db", err, sizeof err), YP_ERR_IO);
    EXPECT_NE(err[0], 0);
    yp_stats_free(s);
    yp_agg_free(a);
}

} // namespace
