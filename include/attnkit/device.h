/* device.h - where the math runs: the CPU always, CUDA when the build has it
 * and a device is present.  Callers never see #ifdef AK_HAVE_CUDA. */
#ifndef AK_DEVICE_H
#define AK_DEVICE_H

#include "ak.h"

typedef enum { AK_DEV_CPU = 0, AK_DEV_CUDA = 1 } ak_device;

/* 1 if this build has CUDA and a usable device is present. */
AK_API int ak_cuda_available(void);
/* "cpu", "cuda" or "auto" (cuda when available, else cpu).  NULL or ""
 * means auto.  "cuda" without a device is an error.  (The programs read
 * $ATTNKIT_DEVICE; see cli.h.) */
AK_API int ak_device_parse(const char *name, ak_device *out, ak_err *err);
AK_API const char *ak_device_name(ak_device d);

#endif
