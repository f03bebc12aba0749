/* device.c - choosing where the math runs. */
#include "attnkit/device.h"

#include <string.h>

#ifdef AK_HAVE_CUDA
#include "cuda/ak_cuda.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

/* Where the plugin may be, in this order: beside the object that holds
 * this code (an installed or moved libattnkit.so), the build directory,
 * the install prefix (the Makefile names both). */
#ifndef AK_CUDA_PLUGIN
#define AK_CUDA_PLUGIN "libattnkit-cuda.so"
#endif
#ifndef AK_CUDA_PLUGIN_INSTALLED
#define AK_CUDA_PLUGIN_INSTALLED "/usr/local/lib/libattnkit-cuda.so"
#endif
#define PLUGIN_NAME "libattnkit-cuda.so"

/* The plugin's table and the reason it is not there, loaded once; whether
 * the process sees a CUDA device, asked once. */
static const ak_cuda_api *cuda_api;
static char cuda_why[512];
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int has_device;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

/* The plugin at path: its table, or NULL with the reason in cuda_why. */
static const ak_cuda_api *load_plugin(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(cuda_why, sizeof cuda_why, "cannot load the CUDA side: %s", e ? e : path);
        return NULL;
    }
    ak_cuda_plugin_fn f = (ak_cuda_plugin_fn)dlsym(h, AK_CUDA_PLUGIN_SYMBOL);
    const ak_cuda_api *api = f ? f(AK_CUDA_API_VERSION) : NULL;
    if (!api) {
        snprintf(cuda_why, sizeof cuda_why, "%s is from another build of attnkit", path);
        dlclose(h);
    }
    return api;   /* kept loaded for the process's life */
}

static void load(void)
{
    /* no driver, no device: the CUDA runtime and cuBLAS are not loaded */
    if (!dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL)) {
        snprintf(cuda_why, sizeof cuda_why, "no NVIDIA driver (libcuda.so.1 not found)");
        return;
    }
    char beside[PATH_MAX];
    Dl_info info;
    const char *slash;
    beside[0] = '\0';
    if (dladdr((void *)load, &info) && info.dli_fname && (slash = strrchr(info.dli_fname, '/')) &&
        (size_t)(slash - info.dli_fname) + sizeof "/" PLUGIN_NAME <= sizeof beside)
        snprintf(beside, sizeof beside, "%.*s/%s", (int)(slash - info.dli_fname), info.dli_fname,
                 PLUGIN_NAME);
    const char *paths[] = {beside, AK_CUDA_PLUGIN, AK_CUDA_PLUGIN_INSTALLED};
    char first[sizeof cuda_why] = "";
    for (size_t i = 0; i < sizeof paths / sizeof paths[0] && !cuda_api; i++) {
        if (!paths[i][0] || access(paths[i], F_OK) != 0)
            continue;
        cuda_api = load_plugin(paths[i]);
        if (!cuda_api && !first[0])
            memcpy(first, cuda_why, sizeof first);
    }
    if (!cuda_api)
        snprintf(cuda_why, sizeof cuda_why, "%s", first[0] ? first
                 : "cannot find the CUDA side, " PLUGIN_NAME " (not built or not installed)");
}

const ak_cuda_api *ak_cuda(void)
{
    pthread_once(&load_once, load);
    return cuda_api;
}

const char *ak_cuda_load_error(void)
{
    pthread_once(&load_once, load);
    return cuda_api ? "" : cuda_why;
}

static void probe(void)
{
    const ak_cuda_api *api = ak_cuda();
    has_device = api && api->device_count() > 0;
}
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
        if (!ak_cuda_available() && !ak_cuda())
            return ak_fail(err, AK_ECONFIG, "--device cuda: no CUDA device is available (%s)",
                           ak_cuda_load_error());
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
