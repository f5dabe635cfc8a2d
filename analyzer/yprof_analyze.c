/*
 * yprof_analyze.c — the yprof-analyze command: read a trace, print a report,
 * write the SQLite database and any exports asked for.
 *
 * Exit status: 0 when the trace was read (a warning on stderr when it was cut
 * short or damaged), 1 when it is unusable (one line on stderr says why),
 * 2 for bad command-line usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "yp_traces_int.h"
#include "yprof/analyze.h"

#ifndef YP_VERSION /* set by CMake from pyproject.toml */
#define YP_VERSION "unknown"
#endif

/* The --help text. */
static void usage(FILE *f) {
    fputs("usage: yprof-analyze [options] TRACE.yp|DIR ...\n"
          "\n"
          "Reads yprof traces, prints a report (session summary and the top\n"
          "functions), writes a SQLite database of every statistic, and writes\n"
          "the exports asked for. The database's tables: session, processes,\n"
          "threads, functions, function_stats (per function and thread), edges\n"
          "(caller -> callee), call_tree; the view function_totals sums\n"
          "function_stats over threads and processes, process_function_totals over\n"
          "each process's threads. `sqlite3 DB .schema` prints them; times are in\n"
          "seconds. Several traces (a process and its children's <name>.<pid>.yp),\n"
          "or a directory (every *.yp in it), go into one database; they must\n"
          "share a clock.\n"
          "\n"
          "options:\n"
          "  -o, --db PATH        database to write (default: the first-started TRACE\n"
          "                       with .db instead of .yp)\n"
          "      --no-db          do not write a database\n"
          "  -n, --top N          functions in the report (default 20)\n"
          "  -s, --sort KEY       order of the report: total (cumulative time, default),\n"
          "                       self (time in the function itself), ncalls, avg\n"
          "                       (cumulative time per call)\n"
          "  -t, --thread T       report and export only thread T: its name or its id (see\n"
          "                       --threads; the database keeps every thread)\n"
          "      --threads        also print the per-thread table\n"
          "      --processes      also print the per-process table\n"
          "      --tags           also print the per-tag table (yprof_record.set_tag, tag)\n"
          "      --tasks          also print the longest asyncio tasks and greenlets (-n of them)\n"
          "      --tag VALUE      report the calls made under tag VALUE only (the database\n"
          "                       and the exports keep every call)\n"
          "  -p, --process PID    report and export only process PID (the database\n"
          "                       keeps every process)\n"
          "  -w, --width N        fit function rows in N columns, cutting the middle of\n"
          "                       long names (default: the terminal's width; when not a\n"
          "                       terminal, $COLUMNS, else no cut; 0: no cut)\n"
          "  -q, --quiet          print no report (warnings and errors still go to stderr)\n"
          "      --pstats FILE    write a pstats file (python -m pstats, snakeviz, gprof2dot)\n"
          "      --callgrind FILE write a callgrind file (KCachegrind, QCachegrind)\n"
          "      --collapsed FILE write collapsed stacks, 'thread;f;g;h MICROSECONDS' lines\n"
          "                       (flamegraph.pl, speedscope, inferno)\n"
          "      --chrome FILE    write Chrome trace event JSON (ui.perfetto.dev,\n"
          "                       chrome://tracing): one track per thread, every call;\n"
          "                       with --thread, that thread's only; one process's\n"
          "      --perfetto FILE  the same timeline as a Perfetto protobuf trace\n"
          "                       (ui.perfetto.dev, trace_processor), a third of the JSON's size\n"
          "      --since S, --until S  a window, seconds from each trace's start: the\n"
          "                       report, database and exports of what ran in it (the\n"
          "                       timelines: the calls overlapping it, cut to it)\n"
          "      --min-duration US  leave calls shorter than US microseconds out of the timeline\n"
          "      --max-size SIZE  refuse, before writing, a timeline over SIZE bytes (K, M, G\n"
          "                       suffixes; default 1G; 0: no limit)\n"
          "      --flamegraph FILE.svg  write a self-contained SVG flame graph\n"
          "      --pprof FILE.pb.gz  write a pprof profile (go tool pprof, Pyroscope,\n"
          "                       Parca, Grafana): calls and time per call path, labels\n"
          "                       thread and process\n"
          "                       (an export's FILE '-' is standard output: no report then)\n"
          "  -V, --version        print the version\n"
          "  -h, --help           show this help\n"
          "\n"
          "exit status: 0 trace read (warnings on stderr if it was cut short or\n"
          "damaged), 1 trace unusable, 2 bad usage.\n",
          f);
}

static int g_progress_shown;
static void progress(uint64_t done, uint64_t total) {
    if (total < (64u << 20)) return;
    fprintf(stderr, "\ryprof-analyze: %5.1f%% of %.0f MiB", 100.0 * (double)done / (double)total,
            (double)total / (1 << 20));
    g_progress_shown = 1;
}

static char *default_db(const char *trace) {
    size_t n = strlen(trace);
    char *p = malloc(n + 4);
    if (!p) return NULL;
    memcpy(p, trace, n + 1);
    if (n > 3 && !strcmp(p + n - 3, ".yp"))
        strcpy(p + n - 3, ".db");
    else
        strcat(p, ".db");
    return p;
}

/* What the command line asked for. */
typedef struct cli {
    char **args; /* the traces and directories named */
    int n_args;
    const char *db, *thread, *process, *tag, *pstats, *callgrind, *collapsed, *chrome, *flame, *pprof,
        *perfetto;
    int no_db, quiet;
    yp_report_opts ro;
    yp_timeline_opts tl;
} cli;

enum {
    O_NODB = 256,
    O_THREADS,
    O_PROCS,
    O_PSTATS,
    O_CALLGRIND,
    O_COLLAPSED,
    O_CHROME,
    O_FLAME,
    O_PPROF,
    O_PERFETTO,
    O_SINCE,
    O_UNTIL,
    O_MINDUR,
    O_MAXSIZE,
    O_TAG,
    O_TAGS,
    O_TASKS
};

/* A number >= 0 (seconds, microseconds) for option opt: 0, or 2 with the
 * error said. */
static int parse_num(const char *opt, const char *arg, double *out) {
    char *end;
    double v = strtod(arg, &end);
    if (end == arg || *end || !(v >= 0) || v > 1e12) {
        fprintf(stderr, "yprof-analyze: %s needs a number (0 or more), not '%s'\n", opt, arg);
        return 2;
    }
    *out = v;
    return 0;
}

/* --max-size SIZE: bytes with an optional K, M or G (powers of 1024). */
static int parse_size(const char *arg, uint64_t *out) {
    char *end;
    double v = strtod(arg, &end);
    double unit = !*end               ? 1
                  : !strcmp(end, "K") ? 1024.0
                  : !strcmp(end, "M") ? 1048576.0
                  : !strcmp(end, "G") ? 1073741824.0
                                      : -1;
    if (end == arg || unit < 0 || !(v >= 0) || v * unit > 1e18) {
        fprintf(stderr,
                "yprof-analyze: --max-size needs a size in bytes (K, M or G suffix; 0: no limit), not '%s'\n",
                arg);
        return 2;
    }
    *out = (uint64_t)(v * unit);
    return 0;
}

/* The report's width when --width is not given: the terminal's, else
 * $COLUMNS, else 0 (no cut). */
static int default_width(void) {
    struct winsize ws;
    if (isatty(1) && ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    const char *c = getenv("COLUMNS");
    long v = c ? strtol(c, NULL, 10) : 0;
    return v > 0 && v < 100000 ? (int)v : 0;
}

/* --width N: 0, or 2 (usage) with the error said. */
static int parse_width(const char *arg, yp_report_opts *ro) {
    char *end;
    long v = strtol(arg, &end, 10);
    if (*end || v < 0 || v > 100000) {
        fprintf(stderr, "yprof-analyze: --width needs a number of columns (0: no cut), not '%s'\n", arg);
        return 2;
    }
    ro->width = (int)v;
    return 0;
}

/* --top N: 0, or 2 (usage) with the error said. */
static int parse_top(const char *arg, yp_report_opts *ro) {
    char *end;
    long v = strtol(arg, &end, 10);
    if (*end || v <= 0 || v > 1000000) {
        fprintf(stderr, "yprof-analyze: --top needs a positive number, not '%s'\n", arg);
        return 2;
    }
    ro->top = (int)v;
    return 0;
}

/* --sort KEY: 0, or 2 (usage) with the error said. */
static int parse_sort(const char *arg, yp_report_opts *ro) {
    if (!strcmp(arg, "total") || !strcmp(arg, "cumtime"))
        ro->sort = YP_SORT_TOTAL;
    else if (!strcmp(arg, "self") || !strcmp(arg, "tottime"))
        ro->sort = YP_SORT_SELF;
    else if (!strcmp(arg, "ncalls") || !strcmp(arg, "calls"))
        ro->sort = YP_SORT_NCALLS;
    else if (!strcmp(arg, "avg"))
        ro->sort = YP_SORT_AVG;
    else {
        fprintf(stderr, "yprof-analyze: --sort takes total, self, ncalls or avg, not '%s'\n", arg);
        return 2;
    }
    return 0;
}

/* An export to "-" (standard output) has stdout to itself: the report and
 * the lines saying what was written are left out. -1 to go on, else 2 with
 * the error said. */
static int check_stdout(cli *o) {
    const char *outs[] = {o->pstats, o->callgrind, o->collapsed, o->chrome, o->flame, o->pprof, o->perfetto};
    int n = 0;
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) n += outs[i] && !strcmp(outs[i], "-");
    if (o->db && !strcmp(o->db, "-")) {
        fprintf(stderr,
                "yprof-analyze: the database cannot go to standard output (-o -); --no-db writes none\n");
        return 2;
    }
    if (n > 1) {
        fprintf(stderr, "yprof-analyze: only one export can go to standard output (-)\n");
        return 2;
    }
    if (n) o->quiet = 1;
    return -1;
}

/* The command line into *o: -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, cli *o) {
    static const struct option opts[] = {{"db", required_argument, 0, 'o'},
                                         {"no-db", no_argument, 0, O_NODB},
                                         {"top", required_argument, 0, 'n'},
                                         {"sort", required_argument, 0, 's'},
                                         {"thread", required_argument, 0, 't'},
                                         {"threads", no_argument, 0, O_THREADS},
                                         {"processes", no_argument, 0, O_PROCS},
                                         {"tag", required_argument, 0, O_TAG},
                                         {"tags", no_argument, 0, O_TAGS},
                                         {"tasks", no_argument, 0, O_TASKS},
                                         {"process", required_argument, 0, 'p'},
                                         {"width", required_argument, 0, 'w'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"pstats", required_argument, 0, O_PSTATS},
                                         {"callgrind", required_argument, 0, O_CALLGRIND},
                                         {"collapsed", required_argument, 0, O_COLLAPSED},
                                         {"chrome", required_argument, 0, O_CHROME},
                                         {"flamegraph", required_argument, 0, O_FLAME},
                                         {"pprof", required_argument, 0, O_PPROF},
                                         {"perfetto", required_argument, 0, O_PERFETTO},
                                         {"since", required_argument, 0, O_SINCE},
                                         {"until", required_argument, 0, O_UNTIL},
                                         {"min-duration", required_argument, 0, O_MINDUR},
                                         {"max-size", required_argument, 0, O_MAXSIZE},
                                         {"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},
                                         {0, 0, 0, 0}};
    int c, rc = 0;
    while (!rc && (c = getopt_long(argc, argv, "o:n:s:t:p:w:qhV", opts, NULL)) != -1) {
        switch (c) {
        case 'o': o->db = optarg; break;
        case O_NODB: o->no_db = 1; break;
        case 'n': rc = parse_top(optarg, &o->ro); break;
        case 's': rc = parse_sort(optarg, &o->ro); break;
        case 't': o->thread = optarg; break;
        case O_THREADS: o->ro.show_threads = 1; break;
        case O_PROCS: o->ro.show_procs = 1; break;
        case O_TAG: o->tag = optarg; break;
        case O_TAGS: o->ro.show_tags = 1; break;
        case O_TASKS: o->ro.show_tasks = 1; break;
        case 'p': o->process = optarg; break;
        case 'w': rc = parse_width(optarg, &o->ro); break;
        case 'q': o->quiet = 1; break;
        case O_PSTATS: o->pstats = optarg; break;
        case O_CALLGRIND: o->callgrind = optarg; break;
        case O_COLLAPSED: o->collapsed = optarg; break;
        case O_CHROME: o->chrome = optarg; break;
        case O_FLAME: o->flame = optarg; break;
        case O_PPROF: o->pprof = optarg; break;
        case O_PERFETTO: o->perfetto = optarg; break;
        case O_SINCE: rc = parse_num("--since", optarg, &o->tl.since_s); break;
        case O_UNTIL: rc = parse_num("--until", optarg, &o->tl.until_s); break;
        case O_MINDUR: rc = parse_num("--min-duration", optarg, &o->tl.min_us); break;
        case O_MAXSIZE: rc = parse_size(optarg, &o->tl.max_bytes); break;
        case 'h': usage(stdout); return 0;
        case 'V': puts("yprof-analyze " YP_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (rc) return rc;
    if (o->tl.until_s > 0 && o->tl.until_s <= o->tl.since_s) {
        fprintf(stderr, "yprof-analyze: --until must be after --since\n");
        return 2;
    }
    if (optind >= argc) {
        fprintf(stderr, "yprof-analyze: expected a trace file or a directory of them (see --help)\n");
        return 2;
    }
    o->args = argv + optind;
    o->n_args = argc - optind;
    return check_stdout(o);
}

/* The trace's statistics; NULL (the error said) when it cannot be read. */
static yp_stats *load_stats(const char *trace, const yp_timeline_opts *w) {
    char err[512] = "";
    yp_agg *a = yp_agg_new();
    yp_load_result res;
    if (!a) {
        fprintf(stderr, "yprof-analyze: out of memory\n");
        return NULL;
    }
    yp_status st = yp_load_trace_window(trace, w->since_s, w->until_s, a, &res, err, sizeof err,
                                        isatty(2) ? progress : NULL);
    if (g_progress_shown) fputc('\n', stderr);
    if (st != YP_OK) {
        fprintf(stderr, "yprof-analyze: %s: %s\n", trace, err[0] ? err : yp_status_str(st));
        yp_agg_free(a);
        return NULL;
    }
    if (res.warning[0]) fprintf(stderr, "yprof-analyze: warning: %s: %s\n", trace, res.warning);
    yp_stats *s = yp_agg_snapshot(a);
    yp_agg_free(a);
    if (!s) fprintf(stderr, "yprof-analyze: out of memory\n");
    if (s) yp_stats_set_session(s, trace, &res);
    return s;
}

/* Several traces' statistics merged, read one at a time; for --process,
 * that process's own in *only. NULL (the error said) when none could be
 * read or out of memory; a trace that cannot be read among several is
 * skipped with a warning. */
static yp_stats *load_family(const yp_trace_ref *t, size_t n, uint64_t only_pid, yp_stats **only,
                             const yp_timeline_opts *w) {
    yp_stats *all = NULL;
    size_t skipped = 0;
    for (size_t i = 0; i < n; i++) {
        yp_stats *s = load_stats(t[i].path, w);
        if (!s) {
            skipped++;
            continue;
        }
        if (only_pid && !*only && s->session.pid == only_pid) *only = s;
        if (!all) {
            all = s;
            continue;
        }
        yp_stats *m = yp_stats_merge(all, s);
        if (s != *only) yp_stats_free(s);
        if (all != *only) yp_stats_free(all);
        if (!(all = m)) {
            fprintf(stderr, "yprof-analyze: out of memory\n");
            return NULL;
        }
    }
    if (skipped && all)
        fprintf(stderr,
                "yprof-analyze: warning: %zu of %zu traces could not be read (above) and are left out\n",
                skipped, n);
    return all;
}

/* --thread: the report's thread index; -1 (the error said) when none matches. */
static int pick_thread(const yp_stats *s, const char *thread, const char *trace) {
    char *end;
    unsigned long id = strtoul(thread, &end, 10);
    for (size_t i = 0; i < s->n_threads; i++)
        if ((!*end && s->threads[i].id == id) || !strcmp(s->threads[i].name, thread)) return (int)i;
    fprintf(stderr, "yprof-analyze: no thread named or numbered '%s' in %s (see --threads)\n", thread, trace);
    return -1;
}

static const char *out_name(const char *path) { return strcmp(path, "-") ? path : "standard output"; }

/* The timeline exports asked for (they re-read the trace); 0, or 1 when
 * one failed or was refused. */
static int write_timelines(const yp_stats *s, const char *trace, const cli *o) {
    yp_timeline_opts tl = o->tl;
    tl.thread_id = o->ro.thread >= 0 ? s->threads[o->ro.thread].id : UINT32_MAX;
    struct {
        const char *path;
        yp_status (*fn)(const char *, const yp_stats *, const char *, const yp_timeline_opts *, char *,
                        size_t);
    } ex[] = {{o->chrome, yp_export_chrome}, {o->perfetto, yp_export_perfetto}};
    int rc = 0;
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        if (!ex[i].path) continue;
        char err[512] = "";
        yp_status st = ex[i].fn(trace, s, ex[i].path, &tl, err, sizeof err);
        if (st != YP_OK) {
            fprintf(stderr, "yprof-analyze: %s %s: %s\n",
                    st == YP_ERR_ARG ? out_name(ex[i].path) : "cannot write",
                    st == YP_ERR_ARG ? "not written" : out_name(ex[i].path), err);
            rc = 1;
        } else if (!o->quiet) {
            printf("wrote %s\n", ex[i].path);
        }
    }
    return rc;
}

/* The database (of every process, all) and every export asked for (of s,
 * the processes reported, whose trace is trace); 0, or 1 when one failed. */
static int write_outputs(const yp_stats *all, const yp_stats *s, const char *trace, const cli *o) {
    char err[512] = "";
    int rc = 0;
    if (!o->no_db) {
        char *dbp = o->db ? strdup(o->db) : default_db(yp_stats_proc(all, 0)->trace_path);
        if (!dbp || yp_sqlite_write(all, dbp, err, sizeof err) != YP_OK) {
            fprintf(stderr, "yprof-analyze: %s\n", dbp ? err : "out of memory");
            rc = 1;
        } else if (!o->quiet) {
            printf("\ndatabase: %s\n", dbp);
        }
        free(dbp);
    }
    struct {
        const char *path;
        yp_status (*fn)(const yp_stats *, const char *);
    } ex[] = {{o->pstats, yp_export_pstats},
              {o->callgrind, yp_export_callgrind},
              {o->collapsed, yp_export_collapsed},
              {o->flame, yp_export_flamegraph},
              {o->pprof, yp_export_pprof}};
    yp_stats *one = NULL; /* --thread: the exports are that thread's */
    if (o->ro.thread >= 0 && !(one = yp_stats_thread(s, (uint32_t)o->ro.thread))) {
        fprintf(stderr, "yprof-analyze: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        if (!ex[i].path) continue;
        yp_status st = ex[i].fn(one ? one : s, ex[i].path);
        if (st != YP_OK) {
            int e = st == YP_ERR_IO ? yp_export_errno() : 0;
            fprintf(stderr, "yprof-analyze: cannot write %s: %s\n", out_name(ex[i].path),
                    e ? strerror(e) : yp_status_str(st));
            rc = 1;
        } else if (!o->quiet) {
            printf("wrote %s\n", ex[i].path);
        }
    }
    yp_stats_free(one);
    return rc | write_timelines(s, trace, o);
}

/* --process PID: the pid, 0 for none; -1 (the error said) when not a number. */
static long long parse_pid(const char *arg) {
    char *end;
    long long v = arg ? strtoll(arg, &end, 10) : 0;
    if (arg && (*end || v <= 0 || v > 0xFFFFFFFFll)) {
        fprintf(stderr, "yprof-analyze: --process needs a process id, not '%s'\n", arg);
        return -1;
    }
    return v;
}

/* The statistics of the traces named (all) and of those reported (*rep:
 * all, or --process's); the exit status when they cannot be had, else -1. */
static int load_all(cli *o, yp_stats **all, yp_stats **rep, const char **trace) {
    char err[1024] = "";
    size_t n = 0;
    long long pid = parse_pid(o->process);
    if (pid < 0) return 2;
    yp_trace_ref *t = yp_traces_list(o->args, o->n_args, &n, err, sizeof err);
    if (!t) {
        fprintf(stderr, "yprof-analyze: %s\n", err);
        return 1;
    }
    if ((o->chrome || o->perfetto) && n > 1 && !pid) {
        fprintf(stderr,
                "yprof-analyze: --%s writes one process's timeline: add --process PID (one of %zu "
                "traces; --processes lists them)\n",
                o->chrome ? "chrome" : "perfetto", n);
        yp_traces_free(t, n);
        return 2;
    }
    yp_stats *only = NULL;
    *all = load_family(t, n, (uint64_t)pid, &only, &o->tl);
    *rep = pid ? only : *all;
    *trace = *rep ? (*rep)->session.trace_path : "";
    yp_traces_free(t, n);
    if (!*all) return 1;
    if (!*rep) {
        fprintf(stderr, "yprof-analyze: no trace of process %lld among the traces read (see --processes)\n",
                pid);
        yp_stats_free(*all);
        return 2;
    }
    return -1;
}

int main(int argc, char **argv) {
    cli o = {0};
    o.ro = (yp_report_opts){20, YP_SORT_TOTAL, -1, 0, default_width(), 0, 0, 0, -1};
    o.tl = (yp_timeline_opts){0, 0, 0, UINT32_MAX, 1ull << 30};
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    yp_stats *all, *s;
    const char *trace;
    if ((rc = load_all(&o, &all, &s, &trace)) >= 0) return rc;
    if (o.thread && (o.ro.thread = pick_thread(s, o.thread, trace)) < 0)
        rc = 2;
    else if (o.tag && (o.ro.tag = yp_stats_find_tag(s, o.tag)) < 0) {
        fprintf(stderr, "yprof-analyze: no calls under tag '%s' in %s (see --tags)\n", o.tag, trace);
        rc = 2;
    } else {
        if (!o.quiet) yp_report_print(s, &o.ro, stdout);
        rc = write_outputs(all, s, trace, &o);
    }
    if (s != all) yp_stats_free(s);
    yp_stats_free(all);
    return rc;
}
