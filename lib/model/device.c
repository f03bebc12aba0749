/* device.c - choosing where the math runs. */
#include "attnkit/device.h"

#include <string.h>

#ifdef AK_HAVE_CUDA
#include "cuda/ak_cuda.h"

#include <pthread.h>

/* Whether the process sees a CUDA device, asked once. */
static int has_device;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

static void probe(void) { has_device = ak_cuda_device_count() > 0; }
#endif

int ak_cuda_available(void)
{
#ifdef AK_HAVE_CUDA
    pthread_once(&probe_once, probe);
    return has_device;
#else
    return 0;
#endif
}

const char *ak_device_name(ak_device d) { return d == AK_DEV_CUDA ? "cuda" : "cpu"; }

int ak_device_parse(const char *name, ak_device *out, ak_err *err)
{
    if (!name || !*name || strcmp(name, "auto") == 0) {
        *out = ak_cuda_available() ? AK_DEV_CUDA : AK_DEV_CPU;
        return 0;
    }
    if (strcmp(name, "cpu") == 0) {
        *out = AK_DEV_CPU;
        return 0;
    }
    if (strcmp(name, "cuda") == 0) {
#ifdef AK_HAVE_CUDA
        if (!ak_cuda_available())
            return ak_fail(err, AK_ECONFIG, "--device cuda: no CUDA device is available");
        *out = AK_DEV_CUDA;
        return 0;
#else
        return ak_fail(err, AK_ECONFIG, "--device cuda: this build has no CUDA (rebuild "
                       "with nvcc on the PATH)");
#endif
    }
    return ak_fail(err, AK_EUSAGE, "unknown device '%s' (cpu, cuda or auto)", name);
}
