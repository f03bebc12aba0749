/* device.cu - is there a CUDA device?  (lib/model/device.c asks.) */
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
