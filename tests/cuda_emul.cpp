// Host emulation of helmholtz's CUDA kernels: compiles csrc/hz_kernels.cu itself
// as C++ and launches its kernels over their grids, one CTA at a time with one
// thread (blockDim = 1, so every CTA loop covers all its items and
// __syncthreads() is a no-op). tests/test_cuda_emulation.py compares the
// results with the C core. What this cannot show: races between threads,
// shared-memory limits, and anything the GPU compiler does differently.
//
// stdin (little-endian): int32 n, H, W, C, hs, vs, nq, ipc, mode (0 small-image
// kernel, 1 global kernels), out_kind (0 u8, 1 f32, 2 bf16), normalize;
// float32 mean[3], std[3]; int32 qualities[nq * n]; uint16 tables[n * 2 * 64];
// uint8 images[n * H * W * C].
// stdout: pixels (nq, n, H, W, C) u8 or (nq, n, C, H, W) f32 / bf16 bits;
// coefficients per component (nq, n, bh, bw, 64) int16; reconstruct(q = 0
// coefficients, tables) u8 (n, H, W, C); std-table bits int64 (n) of q = 0;
// symbol counts int64 (n, 4, 256) and extra bits int64 (n) of q = 0.
// Built with -DHZ_EMUL_LIB -shared it is instead a library of the kernels for
// tests/test_cuda_fake_device.py, which runs helmholtz/_cuda.py against it.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

struct hz_emul_dim3 {
    unsigned x, y, z;
};
static hz_emul_dim3 threadIdx = {0, 0, 0}, blockIdx = {0, 0, 0}, blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
static unsigned char *hz_emul_shared;
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n)
#define __syncthreads() ((void)0)

#include "hz_kernels.cu"

// For the shared-library build (-DHZ_EMUL_LIB, tests/test_cuda_fake_device.py):
// position the next call of a kernel at CTA bx of a gx-CTA grid with `shared`
// as its dynamic shared memory.
extern "C" void hz_emul_set(unsigned bx, unsigned gx, unsigned char *shared)
{
    blockIdx.x = bx;
    gridDim.x = gx;
    hz_emul_shared = shared;
}

#ifndef HZ_EMUL_LIB

template <class T>
static void read_into(std::vector<T> &v, size_t count)
{
    v.resize(count);
    if (count && fread(v.data(), sizeof(T), count, stdin) != count) {
        fprintf(stderr, "cuda_emul: short input\n");
        exit(2);
    }
}
template <class T>
static void write_out(const std::vector<T> &v)
{
    if (!v.empty()) fwrite(v.data(), sizeof(T), v.size(), stdout);
}

int main()
{
    std::vector<int32_t> hdr;
    read_into(hdr, 11);
    const int n = hdr[0], H = hdr[1], W = hdr[2], C = hdr[3], hs = hdr[4], vs = hdr[5], nq = hdr[6], ipc = hdr[7];
    const int mode = hdr[8], out_kind = hdr[9], normalize = hdr[10];
    std::vector<float> ms;
    read_into(ms, 6);
    std::vector<int32_t> qualities;
    read_into(qualities, (size_t)nq * n);
    std::vector<uint16_t> tables;
    read_into(tables, (size_t)n * 128);
    std::vector<uint8_t> images;
    read_into(images, (size_t)n * H * W * C);

    hz_gpu_geom g;
    hz_gpu_make_geom(&g, H, W, C, hs, vs);
    const int blocks = hz_gpu_blocks(&g);
    const int64_t pb = hz_gpu_plane_bytes(&g);

    std::vector<int32_t> div(HZ_GPU_DIV_WORDS);
    std::vector<uint8_t> lens(4 * 256);
    hz_init_tables(div.data(), lens.data());

    std::vector<int16_t> coefs[3];
    int16_t *cp[3] = {nullptr, nullptr, nullptr};
    for (int c = 0; c < g.ncomp; c++) {
        coefs[c].assign((size_t)nq * n * g.bh[c] * g.bw[c] * 64, 0);
        cp[c] = coefs[c].data();
    }
    const size_t pix = (size_t)nq * n * H * W * C;
    std::vector<uint8_t> out_u8(out_kind == 0 ? pix : 0);
    std::vector<float> out_f32(out_kind == 1 ? pix : 0);
    std::vector<uint16_t> out_bf16(out_kind == 2 ? pix : 0);
    void *out_f = out_kind == 1 ? (void *)out_f32.data() : (void *)out_bf16.data();
    const float *mean = ms.data(), *stdv = ms.data() + 3;

    if (mode == 0) {
        const int img_stride = (H * W * C + 15) & ~15;
        const size_t smem = (size_t)ipc * (img_stride + blocks * 128 + ((pb + 15) & ~(int64_t)15));
        std::vector<unsigned char> shared(smem + 16);
        hz_emul_shared = shared.data();
        gridDim.x = (n + ipc - 1) / ipc;
        for (blockIdx.x = 0; blockIdx.x < gridDim.x; blockIdx.x++) {
            memset(shared.data(), 0xAB, shared.size()); // stale data must never leak into results
            hz_roundtrip_small(images.data(), n, H, W, C, hs, vs, qualities.data(), nq, ipc, div.data(), 1, out_kind,
                               out_u8.data(), out_f, mean, stdv, normalize, cp[0], cp[1], cp[2]);
        }
        blockIdx.x = 0; // the grid-stride kernels below run as a single CTA
        gridDim.x = 1;
    } else {
        std::vector<int16_t> fd((size_t)n * blocks * 64);
        std::vector<uint8_t> planes((size_t)n * pb, 0xAB);
        hz_fdct_global(images.data(), n, H, W, C, hs, vs, fd.data());
        for (int q = 0; q < nq; q++) {
            hz_quant_global(fd.data(), n, H, W, C, hs, vs, qualities.data(), q, div.data(), cp[0], cp[1], cp[2],
                            planes.data());
            hz_emit_global(planes.data(), n, H, W, C, hs, vs, (int64_t)q * n, out_kind, out_u8.data(), out_f, mean,
                           stdv, normalize);
        }
    }
    // reconstruct the q = 0 coefficients with the given tables
    std::vector<uint8_t> planes((size_t)n * pb, 0xCD), recon((size_t)n * H * W * C);
    hz_dequant_global(cp[0], cp[1], cp[2], tables.data(), n, H, W, C, hs, vs, planes.data());
    hz_emit_global(planes.data(), n, H, W, C, hs, vs, 0, 0, recon.data(), nullptr, mean, stdv, 0);
    // bits of the q = 0 coefficients
    std::vector<int64_t> bits(n), freq((size_t)n * 1024), extra(n);
    hz_bits_std(cp[0], cp[1], cp[2], g.ncomp, n, g.bh[0], g.bw[0], g.bh[1], g.bw[1], hs, vs, lens.data(), bits.data());
    hz_frequencies(cp[0], cp[1], cp[2], g.ncomp, n, g.bh[0], g.bw[0], g.bh[1], g.bw[1], hs, vs, freq.data(),
                   extra.data());

    write_out(out_u8);
    write_out(out_f32);
    write_out(out_bf16);
    for (int c = 0; c < g.ncomp; c++) write_out(coefs[c]);
    write_out(recon);
    write_out(bits);
    write_out(freq);
    write_out(extra);
    return 0;
}
#endif // HZ_EMUL_LIB
