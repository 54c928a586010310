/* Common definitions for helmholtz's C and CUDA sources.
 *
 * Every header under csrc/ must compile as C99, as C++ and as CUDA through
 * NVRTC, which has no system headers: include nothing but this file for
 * integer types, and mark shared functions HZ_HD.
 */
#ifndef HZ_COMMON_H
#define HZ_COMMON_H

#if defined(__CUDACC_RTC__)
typedef signed char int8_t;
typedef unsigned char uint8_t;
typedef short int16_t;
typedef unsigned short uint16_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef long long int64_t;
typedef unsigned long long uint64_t;
#else
#include <stdint.h>
#include <stddef.h>
#endif

/* HZ_HD: a shared math function. C compilers see static inline host code;
 * CUDA compilers (nvcc, NVRTC) see device code, which may read the HZ_CONST
 * tables and use device intrinsics. */
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define HZ_HD __device__ __forceinline__
#define HZ_CONST __device__ const
#else
#define HZ_HD static inline
#define HZ_CONST static const
#endif

/* Status codes returned by the C core; helmholtz/_native.pyx turns them into
 * Python exceptions in one place. */
enum hz_status {
    HZ_OK = 0,
    HZ_ERR_NOMEM = 1,      /* an allocation failed */
    HZ_ERR_ARG = 2,        /* an argument is out of range */
    HZ_ERR_THREAD = 3,     /* a worker thread could not be started */
    HZ_ERR_OVERFLOW = 4,   /* an output buffer was too small */
    HZ_ERR_RANGE = 5,      /* coefficients outside what an 8-bit baseline encoder produces */
    HZ_ERR_KERNELS = 6     /* HELMHOLTZ_KERNELS names a kernel set this CPU cannot run */
};

#endif /* HZ_COMMON_H */
