/*
 * yp_sqlite.c — writes a snapshot as the SQLite database whose schema is the
 * public interface documented in docs/schema.md. The file is replaced; all
 * rows go in one transaction.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "yprof/analyze.h"

static const char *const schema =
    "PRAGMA journal_mode=OFF;"
    "PRAGMA synchronous=OFF;"
    "CREATE TABLE session(trace_path TEXT, python_version TEXT, command_line TEXT,"
    " pid INTEGER, clock TEXT, started_at TEXT, started_unix REAL, duration_s REAL,"
    " events INTEGER, dropped_events INTEGER, pollution_pct REAL, profiler_bytes INTEGER,"
    " hook_s REAL, flusher_s REAL, interp_s REAL, app_s REAL, complete INTEGER,"
    " bad_chunks INTEGER, call_paths_truncated INTEGER, flusher_pct REAL, peak_bytes INTEGER,"
    " tasks_dropped INTEGER);"
    "CREATE TABLE processes(id INTEGER PRIMARY KEY, pid INTEGER, ppid INTEGER, trace_path TEXT,"
    " command_line TEXT, python_version TEXT, clock TEXT, started_at TEXT, started_unix REAL,"
    " duration_s REAL, events INTEGER, dropped_events INTEGER, pollution_pct REAL, hook_s REAL,"
    " flusher_s REAL, interp_s REAL, app_s REAL, profiler_bytes INTEGER, peak_bytes INTEGER,"
    " complete INTEGER, bad_chunks INTEGER);"
    "CREATE TABLE threads(id INTEGER PRIMARY KEY, name TEXT, ident INTEGER,"
    " native_id INTEGER, wall_s REAL, cpu_s REAL, events INTEGER, dropped INTEGER,"
    " unmatched_returns INTEGER, open_frames INTEGER, process_id INTEGER REFERENCES processes(id));"
    "CREATE TABLE functions(id INTEGER PRIMARY KEY, name TEXT, module TEXT,"
    " filename TEXT, lineno INTEGER, builtin INTEGER);"
    "CREATE TABLE function_stats(function_id INTEGER REFERENCES functions(id),"
    " thread_id INTEGER REFERENCES threads(id), ncalls INTEGER, primitive_calls INTEGER,"
    " self_s REAL, total_s REAL, awaited_s REAL, PRIMARY KEY(function_id, thread_id));"
    "CREATE TABLE edges(caller_id INTEGER REFERENCES functions(id),"
    " callee_id INTEGER REFERENCES functions(id), thread_id INTEGER REFERENCES threads(id),"
    " ncalls INTEGER, primitive_calls INTEGER, self_s REAL, total_s REAL,"
    " PRIMARY KEY(caller_id, callee_id, thread_id));"
    "CREATE TABLE call_tree(id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES call_tree(id),"
    " thread_id INTEGER REFERENCES threads(id), function_id INTEGER REFERENCES functions(id),"
    " depth INTEGER, ncalls INTEGER, self_s REAL, total_s REAL);"
    "CREATE VIEW function_totals AS SELECT f.id AS function_id, f.name AS name,"
    " f.module AS module, f.filename AS filename, f.lineno AS lineno, f.builtin AS builtin,"
    " SUM(s.ncalls) AS ncalls, SUM(s.primitive_calls) AS primitive_calls,"
    " SUM(s.self_s) AS self_s, SUM(s.total_s) AS total_s, SUM(s.awaited_s) AS awaited_s,"
    " CASE WHEN SUM(s.ncalls) > 0 THEN SUM(s.total_s) / SUM(s.ncalls) END AS avg_s"
    " FROM function_stats s JOIN functions f ON f.id = s.function_id GROUP BY f.id;"
    "CREATE VIEW process_function_totals AS SELECT t.process_id AS process_id, p.pid AS pid,"
    " f.id AS function_id, f.name AS name, f.module AS module, f.filename AS filename,"
    " f.lineno AS lineno, f.builtin AS builtin, SUM(s.ncalls) AS ncalls,"
    " SUM(s.primitive_calls) AS primitive_calls, SUM(s.self_s) AS self_s, SUM(s.total_s) AS total_s,"
    " SUM(s.awaited_s) AS awaited_s"
    " FROM function_stats s JOIN functions f ON f.id = s.function_id"
    " JOIN threads t ON t.id = s.thread_id JOIN processes p ON p.id = t.process_id"
    " GROUP BY t.process_id, f.id;"
    "CREATE TABLE tags(id INTEGER PRIMARY KEY, value TEXT, is_int INTEGER);"
    "CREATE TABLE tag_function_stats(tag_id INTEGER REFERENCES tags(id),"
    " function_id INTEGER REFERENCES functions(id), thread_id INTEGER REFERENCES threads(id),"
    " ncalls INTEGER, primitive_calls INTEGER, self_s REAL, total_s REAL, awaited_s REAL, root_s REAL,"
    " PRIMARY KEY(tag_id, function_id, thread_id));"
    "CREATE VIEW tag_function_totals AS SELECT g.value AS tag, g.id AS tag_id, f.id AS function_id,"
    " f.name AS name, f.module AS module, SUM(s.ncalls) AS ncalls, SUM(s.primitive_calls) AS primitive_calls,"
    " SUM(s.self_s) AS self_s, SUM(s.total_s) AS total_s, SUM(s.awaited_s) AS awaited_s,"
    " SUM(s.root_s) AS root_s"
    " FROM tag_function_stats s JOIN tags g ON g.id = s.tag_id JOIN functions f ON f.id = s.function_id"
    " GROUP BY s.tag_id, s.function_id;"
    "CREATE TABLE tasks(id INTEGER PRIMARY KEY, thread_id INTEGER REFERENCES threads(id), kind TEXT,"
    " name TEXT, function_id INTEGER REFERENCES functions(id), tag_id INTEGER REFERENCES tags(id),"
    " created_s REAL, first_run_s REAL, done_s REAL, wall_s REAL, active_s REAL, steps INTEGER);"
    "CREATE INDEX threads_process ON threads(process_id);"
    "CREATE INDEX function_stats_thread ON function_stats(thread_id, self_s);"
    "CREATE INDEX edges_callee ON edges(callee_id);"
    "CREATE INDEX edges_thread ON edges(thread_id);"
    "CREATE INDEX functions_name ON functions(name);"
    "CREATE INDEX call_tree_parent ON call_tree(parent_id);"
    "CREATE INDEX call_tree_function ON call_tree(function_id);";

/* One table's rows: prepare sql, call bind(st, s, i) for i in [0, n) and
 * step each; the first SQLite error code, or SQLITE_OK. */
typedef void (*binder)(sqlite3_stmt *st, const yp_stats *s, size_t i);

static int insert_rows(sqlite3 *db, const char *sql, const yp_stats *s, size_t n, binder bind) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < n; i++) {
        bind(st, s, i);
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    sqlite3_finalize(st);
    return rc;
}

/* "2026-11-30T20:41:00Z" */
static void iso_time(double unix_s, char *when, size_t n) {
    time_t t = (time_t)unix_s;
    struct tm tmv;
    when[0] = 0;
    if (gmtime_r(&t, &tmv)) strftime(when, n, "%Y-%m-%dT%H:%M:%SZ", &tmv);
}

/* The session row (one). */
static void bind_session(sqlite3_stmt *st, const yp_stats *s, size_t i) {
    (void)i;
    const yp_session *ss = &s->session;
    char when[64];
    iso_time(ss->started_at, when, sizeof when);
    sqlite3_bind_text(st, 1, ss->trace_path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ss->python_version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ss->command_line, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)ss->pid);
    sqlite3_bind_text(st, 5, ss->clock, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, when, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 7, ss->started_at);
    sqlite3_bind_double(st, 8, ss->duration_s);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)ss->events);
    sqlite3_bind_int64(st, 10, (sqlite3_int64)ss->dropped_events);
    sqlite3_bind_double(st, 11, ss->pollution_pct);
    sqlite3_bind_int64(st, 12, (sqlite3_int64)ss->profiler_bytes);
    sqlite3_bind_double(st, 13, ss->hook_s);
    sqlite3_bind_double(st, 14, ss->flusher_s);
    sqlite3_bind_double(st, 15, ss->interp_s);
    sqlite3_bind_double(st, 16, ss->app_s);
    sqlite3_bind_int(st, 17, ss->complete);
    sqlite3_bind_int64(st, 18, (sqlite3_int64)ss->bad_chunks);
    sqlite3_bind_int64(st, 19, s->nodes_truncated);
    sqlite3_bind_double(st, 20, ss->flusher_pct);
    sqlite3_bind_int64(st, 21, (sqlite3_int64)ss->peak_bytes);
    sqlite3_bind_int64(st, 22, (sqlite3_int64)s->tasks_dropped);
}

/* Row i of processes (ids from 1). */
static void bind_proc(sqlite3_stmt *st, const yp_stats *s, size_t i) {
    const yp_session *p = yp_stats_proc(s, i);
    char when[64];
    iso_time(p->started_at, when, sizeof when);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)i + 1);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)p->pid);
    if (p->ppid)
        sqlite3_bind_int64(st, 3, (sqlite3_int64)p->ppid);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_text(st, 4, p->trace_path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, p->command_line, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, p->python_version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, p->clock, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, when, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 9, p->started_at);
    sqlite3_bind_double(st, 10, p->duration_s);
    sqlite3_bind_int64(st, 11, (sqlite3_int64)p->events);
    sqlite3_bind_int64(st, 12, (sqlite3_int64)p->dropped_events);
    sqlite3_bind_double(st, 13, p->pollution_pct);
    sqlite3_bind_double(st, 14, p->hook_s);
    sqlite3_bind_double(st, 15, p->flusher_s);
    sqlite3_bind_double(st, 16, p->interp_s);
    sqlite3_bind_double(st, 17, p->app_s);
    sqlite3_bind_int64(st, 18, (sqlite3_int64)p->profiler_bytes);
    sqlite3_bind_int64(st, 19, (sqlite3_int64)p->peak_bytes);
    sqlite3_bind_int(st, 20, p->complete);
    sqlite3_bind_int64(st, 21, (sqlite3_int64)p->bad_chunks);
}

/* Row i of threads. */
static void bind_thread(sqlite3_stmt *st, const yp_stats *s, size_t i) {
    const yp_thread_stat *th = &s->threads[i];
    sqlite3_bind_int64(st, 1, th->id);
    sqlite3_bind_text(st, 2, th->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)th->ident);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)th->native_id);
    sqlite3_bind_double(st, 5, th->wall_s);
    sqlite3_bind_double(st, 6, th->cpu_s);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)th->events);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)th->dropped);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)th->unmatched);
    sqlite3_bind_int64(st, 10, th->open_frames);
    sqlite3_bind_int64(st, 11, (sqlite3_int64)th->process + 1);
}

/* Row i of functions. */
static void bind_func(sqlite3_stmt *st, const yp_stats *s, size_t i) {
    const yp_func *f = &s->funcs[i];
    sqlite3_bind_int64(st, 1, f->id);
    sqlite3_bind_text(st, 2, f->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, f->module, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, f->filename, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, f->lineno);
    sqlite3_bind_int(st, 6, f->builtin != 0);
    sqlite3_bind_int(st, 7, YP_SYM_NOT_FUNC(f->builtin)); /* a tag (in tags) or a task's name (in tasks) */
}

/* Row i of funcs into tags, when it is a tag's value. */
static void bind_tag(sqlite3_stmt *st, const yp_stats *s, size_t i) {
    const yp_func *f = &s->funcs[i];
    sqlite3_bind_int64(st, 1, f->id);
    sqlite3_bind_text(st, 2, f->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, f->builtin == YP_SYM_TAG_INT);
    sqlite3_bind_int(st, 4, YP_SYM_IS_TAG(f->builtin));
}

/* Row i of tag_function_stats. */
static void bind_tagstat(sqlite3_stmt *st, const yp_stats *s, size_t i) {
    const yp_tagstat *t = &s->tagstats[i];
    sqlite3_bind_int64(st, 1, s->funcs[t->tag].id);
    sqlite3_bind_int64(st, 2, s->funcs[t->f.func].id);
    sqlite3_bind_int64(st, 3, s->threads[t->f.thread].id);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)t->f.ncalls);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)t->f.primitive_calls);
    sqlite3_bind_double(st, 6, t->f.self_s);
    sqlite3_bind_double(st, 7, t->f.total_s);
    sqlite3_bind_double(st, 8, t->f.awaited_s);
    sqlite3_bind_double(st, 9, t->root_s);
}

/* Row i of tasks (ids from 1; NULL for what is not known). */
static void bind_task(sqlite3_stmt *st, const yp_stats *s, size_t i) {
    const yp_task *k = &s->tasks[i];
    char name[32];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)i + 1);
    sqlite3_bind_int64(st, 2, s->threads[k->thread].id);
    sqlite3_bind_text(st, 3, k->kind == YP_TASK_GREENLET ? "greenlet" : "asyncio", -1, SQLITE_STATIC);
    if (k->name != UINT32_MAX) {
        sqlite3_bind_text(st, 4, s->funcs[k->name].name, -1, SQLITE_STATIC);
    } else if (k->number) {
        snprintf(name, sizeof name, "Task-%llu", (unsigned long long)k->number);
        sqlite3_bind_text(st, 4, name, -1, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_null(st, 4);
    }
    if (k->func != UINT32_MAX)
        sqlite3_bind_int64(st, 5, s->funcs[k->func].id);
    else
        sqlite3_bind_null(st, 5);
    if (k->tag != UINT32_MAX)
        sqlite3_bind_int64(st, 6, s->funcs[k->tag].id);
    else
        sqlite3_bind_null(st, 6);
    double t[3] = {k->created_s, k->first_run_s, k->done_s};
    for (int j = 0; j < 3; j++)
        if (t[j] < 0)
            sqlite3_bind_null(st, 7 + j);
        else
            sqlite3_bind_double(st, 7 + j, t[j]);
    sqlite3_bind_double(st, 10, k->wall_s);
    sqlite3_bind_double(st, 11, k->active_s);
    sqlite3_bind_int64(st, 12, (sqlite3_int64)k->steps);
}

/* Row i of function_stats. */
static void bind_fstat(sqlite3_stmt *st, const yp_stats *s, size_t i) {
    const yp_fstat *f = &s->fstats[i];
    sqlite3_bind_int64(st, 1, s->funcs[f->func].id);
    sqlite3_bind_int64(st, 2, s->threads[f->thread].id);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)f->ncalls);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)f->primitive_calls);
    sqlite3_bind_double(st, 5, f->self_s);
    sqlite3_bind_double(st, 6, f->total_s);
    sqlite3_bind_double(st, 7, f->awaited_s);
}

/* Row i of edges. */
static void bind_edge(sqlite3_stmt *st, const yp_stats *s, size_t i) {
    const yp_edge *e = &s->edges[i];
    sqlite3_bind_int64(st, 1, s->funcs[e->caller].id);
    sqlite3_bind_int64(st, 2, s->funcs[e->callee].id);
    sqlite3_bind_int64(st, 3, s->threads[e->thread].id);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)e->ncalls);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)e->primitive_calls);
    sqlite3_bind_double(st, 6, e->self_s);
    sqlite3_bind_double(st, 7, e->total_s);
}

/* Row i of call_tree (ids from 1; a root has no parent). */
static void bind_node(sqlite3_stmt *st, const yp_stats *s, size_t i) {
    const yp_node *n = &s->nodes[i];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)i + 1);
    if (n->parent == UINT32_MAX)
        sqlite3_bind_null(st, 2);
    else
        sqlite3_bind_int64(st, 2, (sqlite3_int64)n->parent + 1);
    sqlite3_bind_int64(st, 3, s->threads[n->thread].id);
    sqlite3_bind_int64(st, 4, s->funcs[n->func].id);
    sqlite3_bind_int64(st, 5, n->depth);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)n->ncalls);
    sqlite3_bind_double(st, 7, n->self_s);
    sqlite3_bind_double(st, 8, n->total_s);
}

/* Every table's rows, in one transaction. */
static int write_rows(sqlite3 *db, const yp_stats *s) {
    int rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = insert_rows(db, "INSERT INTO session VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", s, 1,
                         bind_session);
    if (rc == SQLITE_OK)
        rc = insert_rows(db, "INSERT INTO processes VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", s,
                         yp_stats_n_procs(s), bind_proc);
    if (rc == SQLITE_OK)
        rc = insert_rows(db, "INSERT INTO threads VALUES(?,?,?,?,?,?,?,?,?,?,?)", s, s->n_threads,
                         bind_thread);
    if (rc == SQLITE_OK)
        rc = insert_rows(db, "INSERT INTO functions SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE ?7 = 0", s,
                         s->n_funcs, bind_func);
    if (rc == SQLITE_OK)
        rc = insert_rows(db, "INSERT INTO tags SELECT ?1, ?2, ?3 WHERE ?4 = 1", s, s->n_funcs, bind_tag);
    if (rc == SQLITE_OK)
        rc = insert_rows(db, "INSERT INTO tag_function_stats VALUES(?,?,?,?,?,?,?,?,?)", s, s->n_tagstats,
                         bind_tagstat);
    if (rc == SQLITE_OK)
        rc = insert_rows(db, "INSERT INTO function_stats VALUES(?,?,?,?,?,?,?)", s, s->n_fstats, bind_fstat);
    if (rc == SQLITE_OK)
        rc = insert_rows(db, "INSERT INTO edges VALUES(?,?,?,?,?,?,?)", s, s->n_edges, bind_edge);
    if (rc == SQLITE_OK)
        rc = insert_rows(db, "INSERT INTO call_tree VALUES(?,?,?,?,?,?,?,?)", s, s->n_nodes, bind_node);
    if (rc == SQLITE_OK)
        rc = insert_rows(db, "INSERT INTO tasks VALUES(?,?,?,?,?,?,?,?,?,?,?,?)", s, s->n_tasks, bind_task);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    return rc;
}

yp_status yp_sqlite_write(const yp_stats *s, const char *path, char *errbuf, size_t errlen) {
    sqlite3 *db = NULL;
    if (unlink(path) != 0) { /* replace; a missing file is fine */
    }
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    char version[48]; /* the schema's version, for readers (docs/schema.md) */
    snprintf(version, sizeof version, "PRAGMA user_version=%d;", YP_SCHEMA_VERSION);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, version, NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, schema, NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = write_rows(db, s);
    if (rc == SQLITE_OK) {
        rc = sqlite3_close(db);
        if (rc == SQLITE_OK) return YP_OK;
    }
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "cannot write database %s: %s", path,
                 db ? sqlite3_errmsg(db) : "cannot open");
    sqlite3_close(db);
    return YP_ERR_IO;
}
