/* The kernels for the baseline instruction set (SSE2 on x86-64, plain C elsewhere). */
#define HZ_FN(name) name##_portable
#define HZ_FN_NAME "portable"
#define HZ_LANES 8
#include "hz_codec_impl.h"
