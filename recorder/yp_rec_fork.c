/*
 * yp_rec_fork.c — the recorder across fork(). yp_rec_fork_prepare takes
 * every lock in their order (the caller then takes the sink's), so the
 * child is made while no other thread holds one; yp_rec_fork_parent and
 * yp_rec_fork_child let go of them. The child then forgets the parent's
 * rings, flusher and trace (yp_rec_after_fork_child).
 */
#include <pthread.h>

#include "yp_rec_int.h"
#include "yp_symtab_int.h"

void yp_rec_fork_prepare(void) {
    pthread_mutex_lock(&R.drain_mu);
    yp_symtab_fork_lock();
    pthread_mutex_lock(&R.reg_mu);
    pthread_mutex_lock(&R.wake_mu);
}

void yp_rec_fork_parent(void) {
    pthread_mutex_unlock(&R.wake_mu);
    pthread_mutex_unlock(&R.reg_mu);
    yp_symtab_fork_unlock();
    pthread_mutex_unlock(&R.drain_mu);
}

void yp_rec_fork_child(void) {
    /* A condition variable keeps its waiters' accounting: the parent's
     * waiters (a get_stats() in yp_rec_sync) are not in the child, and a
     * broadcast would wait for them forever. Nobody waits here: start anew. */
    yp_rec_init_conds();
    /* the only thread left is the one that took them (prepare) */
    pthread_mutex_unlock(&R.wake_mu);
    pthread_mutex_unlock(&R.reg_mu);
    yp_symtab_fork_unlock();
    pthread_mutex_unlock(&R.drain_mu);
}

void yp_rec_after_fork_child(void) {
    /* Only this thread exists now, and no lock is held (fork_prepare took
     * them all, fork_child let go). The parent's rings belong to threads
     * that are gone: forget (leak) them rather than touch their owners'
     * state; the parent's trace is the parent's: close our copy of its
     * descriptor without writing (the writer is whole: drain_mu was held). */
    pthread_mutex_lock(&R.drain_mu);
    R.thread_started = 0;
    atomic_store(&R.open, 0);
    yp_writer_close(R.w, NULL);
    R.w = NULL;
    R.sink = (yp_sink){0};
    R.paused = 0;
    pthread_mutex_lock(&R.reg_mu);
    R.rings = NULL;
    R.pool = NULL;
    R.n_pool = 0;
    atomic_store(&R.budget.used_bytes, 0);
    R.freed_dropped = R.freed_hook_ns = 0;
    pthread_mutex_unlock(&R.reg_mu);
    yp_rec_threads_after_fork_child();
    pthread_mutex_lock(&R.wake_mu);
    R.stop_req = 0;
    R.sync_req = R.sync_done = 0;
    pthread_mutex_unlock(&R.wake_mu);
    atomic_store(&R.peak_bytes, 0);
    pthread_mutex_unlock(&R.drain_mu);
}
