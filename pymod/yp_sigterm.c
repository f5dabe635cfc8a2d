/*
 * yp_sigterm.c — a recording child's SIGTERM, caught in C (yprof_record/
 * _follow.py's guard_sigterm).
 *
 * A Python-level handler would run only when the main thread next checks
 * for signals: one arriving just before a blocking call (a pool worker
 * reading its queue, a sleep) is seen only when that call returns, maybe
 * never. Here the handler only posts a semaphore (async-signal-safe), with
 * SA_RESTART so the program's interrupted calls go on as before; a quiet
 * thread waiting on it, without the GIL, finishes the trace with the GIL
 * and then dies of SIGTERM, the default action put back: the parent sees
 * the end it would have seen. A handler the program installs later
 * (signal.signal) replaces this one. A fork child starts with the default
 * action back (it has no waiting thread): if it records, it catches
 * SIGTERM anew (yprof_record's after-fork handler).
 */
#include "yp_pymod_int.h"

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <unistd.h>

static struct {
    sem_t sem;
    pid_t pid; /* the process the semaphore and its waiter are in (0: none) */
} T;

static void on_sigterm(int sig) {
    (void)sig;
    int e = errno;
    sem_post(&T.sem);
    errno = e;
}

static void set_action(void (*fn)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = flags;
    sigaction(SIGTERM, &sa, NULL);
}

/* In a fork child: no thread waits on the semaphore there; until the
 * child catches SIGTERM anew, it dies of it, as a child of a program
 * without the profiler would. */
static void child_after_fork(void) {
    struct sigaction cur;
    if (sigaction(SIGTERM, NULL, &cur) == 0 && cur.sa_handler == on_sigterm) set_action(SIG_DFL, 0);
    T.pid = 0;
}

/* _sigterm_catch() -> True when SIGTERM is now ours (its action was the
 * default), False when the program has its own (or ignores it): then
 * nothing is changed. */
PyObject *yp_py_sigterm_catch(PyObject *self, PyObject *unused) {
    (void)self, (void)unused;
    struct sigaction cur;
    if (sigaction(SIGTERM, NULL, &cur) != 0) Py_RETURN_FALSE;
    if (cur.sa_handler == on_sigterm && T.pid == getpid()) Py_RETURN_TRUE;
    if (cur.sa_handler != SIG_DFL) Py_RETURN_FALSE; /* the program's own, or ignored */
    static int atfork;
    if (!atfork && pthread_atfork(NULL, NULL, child_after_fork) != 0) Py_RETURN_FALSE;
    atfork = 1;
    if (sem_init(&T.sem, 0, 0) != 0) Py_RETURN_FALSE;
    T.pid = getpid();
    set_action(on_sigterm, SA_RESTART);
    Py_RETURN_TRUE;
}

/* _sigterm_wait(): until SIGTERM comes (the GIL let go meanwhile). */
PyObject *yp_py_sigterm_wait(PyObject *self, PyObject *unused) {
    (void)self, (void)unused;
    int rc;
    Py_BEGIN_ALLOW_THREADS
        do rc = sem_wait(&T.sem);
        while (rc != 0 && errno == EINTR);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* _sigterm_die(): the default action back, then SIGTERM to this process:
 * it ends as it would have without the profiler. */
PyObject *yp_py_sigterm_die(PyObject *self, PyObject *unused) {
    (void)self, (void)unused;
    set_action(SIG_DFL, 0);
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &term, NULL);
    kill(getpid(), SIGTERM);
    Py_BEGIN_ALLOW_THREADS
        for (;;) pause(); /* the process is ending */
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}
