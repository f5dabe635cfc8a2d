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
 * (signal.signal) replaces this one.
 */
#include "yp_pymod_int.h"

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

/* _sigterm_catch() -> True when SIGTERM is now ours (its action was the
 * default, or ours inherited across a fork), False when the program has
 * its own (or ignores it): then nothing is changed. */
PyObject *yp_py_sigterm_catch(PyObject *self, PyObject *unused) {
    (void)self, (void)unused;
    struct sigaction cur;
    if (sigaction(SIGTERM, NULL, &cur) != 0) Py_RETURN_FALSE;
    int ours = cur.sa_handler == on_sigterm;
    if (!ours && cur.sa_handler != SIG_DFL) Py_RETURN_FALSE;
    if (ours && T.pid == getpid()) Py_RETURN_TRUE;
    if (sem_init(&T.sem, 0, 0) != 0) Py_RETURN_FALSE;
    T.pid = getpid();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigterm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &sa, NULL) != 0) {
        T.pid = 0;
        Py_RETURN_FALSE;
    }
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
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
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
