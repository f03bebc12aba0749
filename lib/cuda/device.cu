/* device.cu - is there a CUDA device?  And the plugin's table of entry
 * points (ak_cuda.h), its one exported symbol, which lib/model/device.c
 * looks up after loading libattnkit-cuda.so. */
#include <cuda_runtime.h>

#include "ak_cuda.h"

extern "C" int ak_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky "no driver" error */
        return 0;
    }
    return n;
}

static const ak_cuda_api api = {
    ak_cuda_device_count,
    ak_cuda_attention,
    ak_cuda_attention_tc,
    ak_cuda_ws_free,
    ak_cuda_set_wmma,
    ak_cuda_attention_time,
    ak_cuda_attention_tc_time,
    ak_cuda_attention_dev_host,
    ak_cuda_model_new,
    ak_cuda_model_put,
    ak_cuda_model_layer,
    ak_cuda_model_forward,
    ak_cuda_model_free,
};

extern "C" __attribute__((visibility("default"))) const ak_cuda_api *ak_cuda_plugin_api(int version)
{
    return version == AK_CUDA_API_VERSION ? &api : NULL;
}
