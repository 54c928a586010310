/* Kernels for the baseline instruction set (SSE2 on x86-64, plain C elsewhere). */
#define HZ_FN(name) name##_generic
#include "hz_codec_impl.h"
