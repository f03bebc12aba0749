/* pool.h - worker threads kept between calls, for the CPU attention and the
 * quantized matrix products: a call publishes its job, the caller works on
 * it as worker 0 beside up to n - 1 pool threads (started on first need),
 * and returns when all are done.  One job at a time per pool. */
#ifndef AK_POOL_H
#define AK_POOL_H

#include <pthread.h>
#include <stdint.h>

#define AK_POOL_MAX 256

typedef struct ak_pool ak_pool;
struct ak_pool_worker {
    ak_pool *pool;
    int id;
};
struct ak_pool {
    int ok;                       /* lock and conditions initialised */
    pthread_mutex_t lock;
    pthread_cond_t go, done;
    int npool;                    /* threads started: ids 1..npool */
    uint64_t generation;          /* bumped for each job */
    int active;                   /* workers 1..active take part in this job */
    int running;                  /* of them, still working */
    int quit;
    void (*fn)(void *job, int id);
    void *job;
    struct ak_pool_worker workers[AK_POOL_MAX];
    pthread_t threads[AK_POOL_MAX];
};

/* Runs fn(job, id) on the caller (id 0) and up to n - 1 pool threads (ids
 * 1..); fewer when threads cannot be made (same result: workers take parts
 * of the job until none is left).  Returns how many took part.  A pool is
 * zero-initialised memory before its first use. */
int ak_pool_run(ak_pool *p, int n, void (*fn)(void *job, int id), void *job);
/* Stops and joins the threads; the pool may be used again after. */
void ak_pool_stop(ak_pool *p);

#endif
