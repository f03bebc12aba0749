/* pool.c - worker threads kept between calls (pool.h). */
#include "pool.h"

static void *pool_thread(void *arg)
{
    struct ak_pool_worker *w = arg;
    ak_pool *p = w->pool;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->quit && p->generation == seen)
            pthread_cond_wait(&p->go, &p->lock);
        if (p->quit)
            break;
        seen = p->generation;
        if (w->id > p->active)
            continue;
        void (*fn)(void *, int) = p->fn;
        void *job = p->job;
        pthread_mutex_unlock(&p->lock);
        fn(job, w->id);
        pthread_mutex_lock(&p->lock);
        if (--p->running == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int ak_pool_run(ak_pool *p, int n, void (*fn)(void *job, int id), void *job)
{
    if (n > AK_POOL_MAX)
        n = AK_POOL_MAX;
    if (n > 1 && !p->ok) {
        if (pthread_mutex_init(&p->lock, NULL) == 0 && pthread_cond_init(&p->go, NULL) == 0 &&
            pthread_cond_init(&p->done, NULL) == 0)
            p->ok = 1;
        else
            n = 1; /* no pool: the caller alone, same result */
    }
    while (n > 1 && p->npool < n - 1) {
        struct ak_pool_worker *w = &p->workers[p->npool + 1];
        *w = (struct ak_pool_worker){p, p->npool + 1};
        if (pthread_create(&p->threads[p->npool + 1], NULL, pool_thread, w) != 0)
            break; /* fewer threads, same result */
        p->npool++;
    }
    int helpers = n - 1 < p->npool ? n - 1 : p->npool;
    if (helpers > 0) {
        pthread_mutex_lock(&p->lock);
        p->fn = fn;
        p->job = job;
        p->active = p->running = helpers;
        p->generation++;
        pthread_cond_broadcast(&p->go);
        pthread_mutex_unlock(&p->lock);
    }
    fn(job, 0);
    if (helpers > 0) {
        pthread_mutex_lock(&p->lock);
        while (p->running > 0)
            pthread_cond_wait(&p->done, &p->lock);
        pthread_mutex_unlock(&p->lock);
    }
    return helpers + 1;
}

void ak_pool_stop(ak_pool *p)
{
    if (!p->ok)
        return;
    pthread_mutex_lock(&p->lock);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->lock);
    for (int t = 1; t <= p->npool; t++)
        pthread_join(p->threads[t], NULL);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->go);
    pthread_mutex_destroy(&p->lock);
    p->ok = p->npool = p->quit = 0;
}
