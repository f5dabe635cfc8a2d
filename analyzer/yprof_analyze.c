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
#include <unistd.h>

#include "yprof/analyze.h"

static void usage(FILE *f) {
    fputs("usage: yprof-analyze [options] TRACE.yp\n"
          "\n"
          "Reads a yprof trace, prints a report (session summary and the top\n"
          "functions), writes a SQLite database of every statistic, and writes\n"
          "the exports asked for. Schema: docs/schema.md.\n"
          "\n"
          "options:\n"
          "  -o, --db PATH        database to write (default: TRACE with .db instead of .yp)\n"
          "      --no-db          do not write a database\n"
          "  -n, --top N          functions in the report (default 20)\n"
          "  -s, --sort KEY       order of the report: total (cumulative time, default),\n"
          "                       self (time in the function itself), ncalls, avg\n"
          "                       (cumulative time per call)\n"
          "  -t, --thread T       report only thread T: its name or its id (see --threads)\n"
          "      --threads        also print the per-thread table\n"
          "  -q, --quiet          print no report (warnings and errors still go to stderr)\n"
          "      --pstats FILE    write a pstats file (python -m pstats, snakeviz, gprof2dot)\n"
          "      --callgrind FILE write a callgrind file (KCachegrind, QCachegrind)\n"
          "      --collapsed FILE write collapsed stacks, 'thread;f;g;h MICROSECONDS' lines\n"
          "                       (flamegraph.pl, speedscope, inferno)\n"
          "      --chrome FILE    write Chrome trace event JSON (ui.perfetto.dev,\n"
          "                       chrome://tracing): one track per thread, every call\n"
          "      --flamegraph FILE.svg  write a self-contained SVG flame graph\n"
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

int main(int argc, char **argv) {
    enum { O_NODB = 256, O_THREADS, O_PSTATS, O_CALLGRIND, O_COLLAPSED, O_CHROME, O_FLAME };
    static const struct option opts[] = {{"db", required_argument, 0, 'o'},
                                         {"no-db", no_argument, 0, O_NODB},
                                         {"top", required_argument, 0, 'n'},
                                         {"sort", required_argument, 0, 's'},
                                         {"thread", required_argument, 0, 't'},
                                         {"threads", no_argument, 0, O_THREADS},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"pstats", required_argument, 0, O_PSTATS},
                                         {"callgrind", required_argument, 0, O_CALLGRIND},
                                         {"collapsed", required_argument, 0, O_COLLAPSED},
                                         {"chrome", required_argument, 0, O_CHROME},
                                         {"flamegraph", required_argument, 0, O_FLAME},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *db = NULL, *thread = NULL, *pstats = NULL, *callgrind = NULL, *collapsed = NULL,
               *chrome = NULL, *flame = NULL;
    int no_db = 0, quiet = 0;
    yp_report_opts ro = {20, YP_SORT_TOTAL, -1, 0};
    int c;
    while ((c = getopt_long(argc, argv, "o:n:s:t:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': db = optarg; break;
        case O_NODB: no_db = 1; break;
        case 'n': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v <= 0 || v > 1000000) {
                fprintf(stderr, "yprof-analyze: --top needs a positive number, not '%s'\n", optarg);
                return 2;
            }
            ro.top = (int)v;
            break;
        }
        case 's':
            if (!strcmp(optarg, "total") || !strcmp(optarg, "cumtime"))
                ro.sort = YP_SORT_TOTAL;
            else if (!strcmp(optarg, "self") || !strcmp(optarg, "tottime"))
                ro.sort = YP_SORT_SELF;
            else if (!strcmp(optarg, "ncalls") || !strcmp(optarg, "calls"))
                ro.sort = YP_SORT_NCALLS;
            else if (!strcmp(optarg, "avg"))
                ro.sort = YP_SORT_AVG;
            else {
                fprintf(stderr, "yprof-analyze: --sort takes total, self, ncalls or avg, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 't': thread = optarg; break;
        case O_THREADS: ro.show_threads = 1; break;
        case 'q': quiet = 1; break;
        case O_PSTATS: pstats = optarg; break;
        case O_CALLGRIND: callgrind = optarg; break;
        case O_COLLAPSED: collapsed = optarg; break;
        case O_CHROME: chrome = optarg; break;
        case O_FLAME: flame = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "yprof-analyze: expected one trace file (see --help)\n");
        return 2;
    }
    const char *trace = argv[optind];
    char err[512] = "";
    yp_agg *a = yp_agg_new();
    yp_load_result res;
    if (!a) {
        fprintf(stderr, "yprof-analyze: out of memory\n");
        return 1;
    }
    yp_status st = yp_load_trace(trace, a, &res, err, sizeof err, isatty(2) ? progress : NULL);
    if (g_progress_shown) fputc('\n', stderr);
    if (st != YP_OK) {
        fprintf(stderr, "yprof-analyze: %s: %s\n", trace, err[0] ? err : yp_status_str(st));
        yp_agg_free(a);
        return 1;
    }
    if (res.warning[0]) fprintf(stderr, "yprof-analyze: warning: %s: %s\n", trace, res.warning);
    yp_stats *s = yp_agg_snapshot(a);
    yp_agg_free(a);
    if (!s) {
        fprintf(stderr, "yprof-analyze: out of memory\n");
        return 1;
    }
    yp_stats_set_session(s, trace, &res);
    int rc = 0;
    if (thread) {
        char *end;
        unsigned long id = strtoul(thread, &end, 10);
        for (size_t i = 0; i < s->n_threads; i++)
            if ((!*end && s->threads[i].id == id) || !strcmp(s->threads[i].name, thread)) ro.thread = (int)i;
        if (ro.thread < 0) {
            fprintf(stderr, "yprof-analyze: no thread named or numbered '%s' in %s (see --threads)\n", thread,
                    trace);
            yp_stats_free(s);
            return 2;
        }
    }
    if (!quiet) yp_report_print(s, &ro, stdout);
    char *dbp = NULL;
    if (!no_db) {
        dbp = db ? strdup(db) : default_db(trace);
        if (!dbp || yp_sqlite_write(s, dbp, err, sizeof err) != YP_OK) {
            fprintf(stderr, "yprof-analyze: %s\n", dbp ? err : "out of memory");
            rc = 1;
        } else if (!quiet) {
            printf("\ndatabase: %s\n", dbp);
        }
    }
    struct {
        const char *path;
        yp_status (*fn)(const yp_stats *, const char *);
    } ex[] = {{pstats, yp_export_pstats},
              {callgrind, yp_export_callgrind},
              {collapsed, yp_export_collapsed},
              {flame, yp_export_flamegraph}};
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        if (!ex[i].path) continue;
        if (ex[i].fn(s, ex[i].path) != YP_OK) {
            fprintf(stderr, "yprof-analyze: cannot write %s\n", ex[i].path);
            rc = 1;
        } else if (!quiet) {
            printf("wrote %s\n", ex[i].path);
        }
    }
    if (chrome) {
        if (yp_export_chrome(trace, s, chrome, err, sizeof err) != YP_OK) {
            fprintf(stderr, "yprof-analyze: cannot write %s: %s\n", chrome, err);
            rc = 1;
        } else if (!quiet) {
            printf("wrote %s\n", chrome);
        }
    }
    free(dbp);
    yp_stats_free(s);
    return rc;
}
