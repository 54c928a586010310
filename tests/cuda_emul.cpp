// Host emulation of helmholtz's CUDA kernels, with barriers that matter.
//
// Compiles csrc/hz_kernels.cu itself as C++ and runs each launch CTA by CTA.
// Within a CTA every thread is a fiber (ucontext) with its own stack, and the
// threads run phase by phase: each runs until it reaches a barrier (HZ_SYNC =
// __syncthreads, HZ_SYNCWARP = __syncwarp, or the implicit one of a warp
// shuffle / ballot), then the next thread runs, in forward, reverse or random
// order; a barrier releases when every thread it covers has arrived. So a
// thread that reads shared memory another thread writes without a barrier in
// between reads stale data in at least one order, and the results differ.
//
// It also checks, at every shared-memory access (HZ_LDS / HZ_STS): that the
// address lies inside the launch's dynamic shared memory, is aligned to the
// access size, and (for loads) was written earlier in this CTA; and at every
// barrier: that the threads it waits for all arrive (an exited thread or a
// thread waiting at another __syncthreads is reported, not hung on).
//
// With logging on, each access is recorded with its site name, thread and
// occurrence; after each CTA the accesses a warp makes together (same site,
// same occurrence) are grouped and their bank pattern computed: 32 banks of 4
// bytes, a 32-bit word read by several lanes is a broadcast, 8-byte accesses
// are served per half-warp and 16-byte ones per quarter-warp. The wavefronts
// an access needs beyond that ideal are bank conflicts.
//
// Built with -shared -fPIC; tests/test_cuda_emulation.py and
// tests/test_cuda_fake_device.py drive it through ctypes (hz_emul_launch
// takes the kernel's parameters as cuLaunchKernel does: an array of pointers
// to the values). What this cannot show: anything about the GPU's memory model
// beyond barrier placement (warp shuffles here also order memory, which on a
// GPU they do not), timing, occupancy, or what the GPU compiler does.
#include <sys/mman.h>
#include <ucontext.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

struct hz_emul_dim3 {
    unsigned x, y, z;
};
static hz_emul_dim3 threadIdx = {0, 0, 0}, blockIdx = {0, 0, 0}, blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
static unsigned char *hz_emul_shared = nullptr;

struct uint2 {
    unsigned x, y;
};
struct uint4 {
    unsigned x, y, z, w;
};
struct float4 {
    float x, y, z, w;
};

#define HZ_EMUL 1
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n)
#define HZ_DEV inline

template <class T>
static T hz_emul_lds(const char *site, const void *p);
template <class T>
static void hz_emul_sts(const char *site, void *p, T v);
static void hz_emul_sync(const char *site);
static void hz_emul_syncwarp(const char *site);
template <class T>
static T hz_emul_shfl_xor(T v, int mask);
static unsigned hz_emul_ballot(int pred);

#define HZ_LDS(site, T, p) hz_emul_lds<T>(site, (const void *)(p))
#define HZ_STS(site, T, p, v) hz_emul_sts<T>(site, (void *)(p), (T)(v))
#define HZ_SYNC(site) hz_emul_sync(site)
#define HZ_SYNCWARP(site) hz_emul_syncwarp(site)
#define HZ_SHFL_XOR(v, m) hz_emul_shfl_xor((v), (m))
#define HZ_BALLOT(p) hz_emul_ballot((p) ? 1 : 0)
#define HZ_POPC(x) __builtin_popcount(x)
#define HZ_ATOMIC_INC(p) (*(p) += 1u) /* fibers never interleave inside it */

#include "hz_kernels.cu"

// ---- a deliberately broken kernel: proves the emulation sees a missing barrier ----
// Reverses n <= blockDim ints through shared memory; with the barrier "reverse"
// dropped (hz_emul_config), thread t reads s[n - 1 - t] before its writer ran.
extern "C" __global__ void hz_emul_reverse(const int32_t *in, int32_t *out, int n)
{
    HZ_DYNAMIC_SHARED(smem);
    int32_t *s = (int32_t *)smem;
    const int t = (int)threadIdx.x;
    if (t < n) HZ_STS("reverse.store", int32_t, s + t, in[t]);
    HZ_SYNC("reverse");
    if (t < n) out[t] = HZ_LDS("reverse.load", int32_t, s + n - 1 - t);
}

// Threads t < n_exit leave before a __syncthreads the others wait at: barrier divergence,
// undefined on a GPU (a hang or worse); the emulation must report it, not hang.
extern "C" __global__ void hz_emul_divergent(int32_t *out, int n_exit)
{
    const int t = (int)threadIdx.x;
    if (t < n_exit) return;
    HZ_SYNC("divergent");
    out[t] = 1;
}

namespace {

// ---- configuration ------------------------------------------------------------------
int g_order = 0; // 0 forward, 1 reverse, 2 random
std::mt19937 g_rng(1);
bool g_log = false;
std::set<std::string> g_drop;
std::string g_error;

// ---- fibers --------------------------------------------------------------------------
enum State { RUNNABLE, AT_CTA, AT_WARP, DONE };
struct Fiber {
    ucontext_t ctx;
    State st;
    const char *site;
    std::vector<std::pair<const char *, int>> occ; // per site: accesses so far
};
const size_t kStack = 256 * 1024;
const unsigned kMaxThreads = 1024;
char *g_stacks = nullptr;
std::vector<Fiber> g_th;
ucontext_t g_sched;
int g_cur = -1;
int g_n = 0;
std::function<void()> g_body;
uint64_t g_slots[kMaxThreads];

// shared memory of the current launch, with a byte map of what this CTA has written
size_t g_shared_size = 0;
std::vector<unsigned char> g_shared;
std::vector<unsigned char> g_written;

void fail(const std::string &msg)
{
    if (g_error.empty()) {
        char where[160];
        snprintf(where, sizeof where, " (CTA %u,%u thread %d)", blockIdx.x, blockIdx.y, g_cur);
        g_error = msg + where;
    }
    if (g_cur >= 0) {
        g_th[g_cur].st = DONE;
        swapcontext(&g_th[g_cur].ctx, &g_sched); // never resumed
    }
}

void entry(int i)
{
    g_body();
    g_th[i].st = DONE;
}

void block_at(State st, const char *site)
{
    Fiber &f = g_th[g_cur];
    f.st = st;
    f.site = site;
    swapcontext(&f.ctx, &g_sched);
}

int pick()
{
    if (g_order == 0) {
        for (int i = 0; i < g_n; i++)
            if (g_th[i].st == RUNNABLE) return i;
        return -1;
    }
    if (g_order == 1) {
        for (int i = g_n - 1; i >= 0; i--)
            if (g_th[i].st == RUNNABLE) return i;
        return -1;
    }
    std::vector<int> r;
    for (int i = 0; i < g_n; i++)
        if (g_th[i].st == RUNNABLE) r.push_back(i);
    if (r.empty()) return -1;
    return r[std::uniform_int_distribution<size_t>(0, r.size() - 1)(g_rng)];
}

// Release what can be released; false on deadlock or misuse (g_error set).
bool release()
{
    bool any = false;
    for (int w = 0; w * 32 < g_n; w++) {
        const int a = w * 32, b = std::min(g_n, a + 32);
        bool all = true;
        for (int i = a; i < b; i++) all &= g_th[i].st == AT_WARP;
        if (all) {
            for (int i = a; i < b; i++) g_th[i].st = RUNNABLE;
            any = true;
        }
    }
    if (any) return true;
    int at_cta = 0, done = 0;
    const char *site = nullptr;
    for (int i = 0; i < g_n; i++) {
        if (g_th[i].st == AT_CTA) {
            if (site && strcmp(site, g_th[i].site) != 0) {
                g_error = std::string("threads wait at different __syncthreads: '") + site + "' and '" + g_th[i].site + "'";
                return false;
            }
            site = g_th[i].site;
            at_cta++;
        }
        done += g_th[i].st == DONE;
    }
    if (at_cta == g_n) {
        for (int i = 0; i < g_n; i++) g_th[i].st = RUNNABLE;
        return true;
    }
    std::string msg = "deadlock or barrier divergence:";
    char buf[96];
    snprintf(buf, sizeof buf, " %d threads at __syncthreads", at_cta);
    msg += buf;
    if (site) msg += std::string(" '") + site + "'";
    snprintf(buf, sizeof buf, ", %d exited", done);
    msg += buf;
    for (int i = 0; i < g_n; i++)
        if (g_th[i].st == AT_WARP) {
            snprintf(buf, sizeof buf, ", thread %d at __syncwarp '%s'", i, g_th[i].site);
            msg += buf;
            break;
        }
    snprintf(buf, sizeof buf, " (CTA %u,%u)", blockIdx.x, blockIdx.y);
    g_error = msg + buf;
    return false;
}

// ---- access log and bank analysis ------------------------------------------------------
struct Access {
    const char *site;
    int tid, occ;
    uint32_t off;
    uint8_t size, store;
};
std::vector<Access> g_log_cta;
struct SiteStats {
    int64_t instances = 0, conflicted = 0, wavefronts = 0, ideal = 0;
    int worst_ways = 0;
};
std::map<std::string, SiteStats> g_stats;

int occurrence(const char *site)
{
    auto &v = g_th[g_cur].occ;
    for (auto &e : v)
        if (e.first == site) return e.second++;
    v.emplace_back(site, 1);
    return 0;
}

void analyse_cta()
{
    std::map<std::tuple<const char *, int, int, int>, std::vector<const Access *>> groups;
    for (const Access &a : g_log_cta) groups[std::make_tuple(a.site, a.tid / 32, a.occ, (int)a.store)].push_back(&a);
    for (auto &kv : groups) {
        auto &acc = kv.second;
        int size = 4;
        for (auto *a : acc) size = std::max(size, (int)a->size);
        const int phases = size / 4, lanes = 32 / phases;
        int total = 0, ideal = 0, ways = 0;
        for (int p = 0; p < phases; p++) {
            std::map<int, std::set<uint32_t>> banks;
            bool used = false;
            for (auto *a : acc) {
                const int lane = a->tid & 31;
                if (lane / lanes != p) continue;
                used = true;
                const uint32_t w0 = a->off / 4, nw = a->size < 4 ? 1 : a->size / 4;
                for (uint32_t w = w0; w < w0 + nw; w++) banks[w % 32].insert(w);
            }
            if (!used) continue;
            int m = 0;
            for (auto &b : banks) m = std::max(m, (int)b.second.size());
            total += m;
            ideal += 1;
            ways = std::max(ways, m);
        }
        SiteStats &s = g_stats[std::get<0>(kv.first)];
        s.instances++;
        s.conflicted += total > ideal;
        s.wavefronts += total;
        s.ideal += ideal;
        s.worst_ways = std::max(s.worst_ways, ways);
    }
    g_log_cta.clear();
}

int run_cta()
{
    g_n = (int)blockDim.x;
    g_th.assign(g_n, Fiber());
    for (int i = 0; i < g_n; i++) {
        Fiber &f = g_th[i];
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = g_stacks + (size_t)i * kStack;
        f.ctx.uc_stack.ss_size = kStack;
        f.ctx.uc_link = &g_sched;
        makecontext(&f.ctx, (void (*)())entry, 1, i);
        f.st = RUNNABLE;
        f.site = nullptr;
    }
    for (;;) {
        int i = pick();
        if (i < 0) {
            bool all_done = true;
            for (auto &f : g_th) all_done &= f.st == DONE;
            if (all_done) break;
            if (!release()) return -1;
            continue;
        }
        g_cur = i;
        threadIdx.x = (unsigned)i;
        swapcontext(&g_sched, &g_th[i].ctx);
        g_cur = -1;
        if (!g_error.empty()) return -1;
    }
    if (g_log) analyse_cta();
    return 0;
}

void check_shared(const char *site, const void *p, size_t size, bool load)
{
    const unsigned char *c = (const unsigned char *)p, *base = g_shared.data();
    if (c < base || c + size > base + g_shared_size) {
        char buf[200];
        snprintf(buf, sizeof buf, "shared access at '%s' outside the %zu bytes of dynamic shared memory (offset %lld)", site,
                 g_shared_size, (long long)(c - base));
        fail(buf);
    }
    const size_t off = (size_t)(c - base);
    if (size > 1 && off % size != 0) {
        char buf[160];
        snprintf(buf, sizeof buf, "misaligned %zu-byte shared access at '%s' (offset %zu)", size, site, off);
        fail(buf);
    }
    if (load) {
        for (size_t k = 0; k < size; k++)
            if (!g_written[off + k]) {
                char buf[160];
                snprintf(buf, sizeof buf, "read of uninitialised shared memory at '%s' (offset %zu)", site, off + k);
                fail(buf);
            }
    } else {
        memset(&g_written[off], 1, size);
    }
    if (g_log)
        g_log_cta.push_back(Access{site, g_cur, occurrence(site), (uint32_t)off, (uint8_t)size, (uint8_t)!load});
}

void warp_barrier()
{
    block_at(AT_WARP, "(warp intrinsic)");
}

// ---- the kernel table ------------------------------------------------------------------
struct Entry {
    std::vector<int> sizes;
    std::function<void(void **)> prepare;
};

template <class... A, size_t... I>
Entry make_entry_impl(void (*k)(A...), std::index_sequence<I...>)
{
    Entry e;
    e.sizes = {(int)sizeof(A)...};
    e.prepare = [k](void **p) {
        auto args = std::make_shared<std::tuple<A...>>(*(A *)p[I]...);
        g_body = [k, args]() { std::apply(k, *args); };
    };
    return e;
}
template <class... A>
Entry make_entry(void (*k)(A...))
{
    return make_entry_impl(k, std::index_sequence_for<A...>{});
}

std::map<std::string, Entry> &kernels()
{
    static std::map<std::string, Entry> t = {
        {"hz_init_tables", make_entry(hz_init_tables)},
        {"hz_roundtrip_small", make_entry(hz_roundtrip_small)},
        {"hz_convert_global", make_entry(hz_convert_global)},
        {"hz_block_global", make_entry(hz_block_global)},
        {"hz_emit_global", make_entry(hz_emit_global)},
        {"hz_bits_std", make_entry(hz_bits_std)},
        {"hz_frequencies", make_entry(hz_frequencies)},
        {"hz_bits_optimal", make_entry(hz_bits_optimal)},
        {"hz_emul_reverse", make_entry(hz_emul_reverse)},
        {"hz_emul_divergent", make_entry(hz_emul_divergent)},
    };
    return t;
}

} // namespace

// ---- hooks the kernels call ------------------------------------------------------------
template <class T>
static T hz_emul_lds(const char *site, const void *p)
{
    check_shared(site, p, sizeof(T), true);
    T v;
    memcpy(&v, p, sizeof(T));
    return v;
}
template <class T>
static void hz_emul_sts(const char *site, void *p, T v)
{
    check_shared(site, p, sizeof(T), false);
    memcpy(p, &v, sizeof(T));
}
static void hz_emul_sync(const char *site)
{
    if (g_drop.count(site)) return;
    block_at(AT_CTA, site);
}
static void hz_emul_syncwarp(const char *site)
{
    if (g_drop.count(site)) return;
    block_at(AT_WARP, site);
}
template <class T>
static T hz_emul_shfl_xor(T v, int mask)
{
    static_assert(sizeof(T) <= 8, "64-bit at most");
    const int me = g_cur, partner = (me & ~31) | ((me & 31) ^ mask);
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof(T));
    g_slots[me] = bits;
    warp_barrier();
    T r = v;
    if (partner < g_n) memcpy(&r, &g_slots[partner], sizeof(T));
    warp_barrier();
    return r;
}
static unsigned hz_emul_ballot(int pred)
{
    const int me = g_cur, w = me & ~31;
    g_slots[me] = (uint64_t)(pred != 0);
    warp_barrier();
    unsigned r = 0;
    for (int l = 0; l < 32 && w + l < g_n; l++) r |= (unsigned)g_slots[w + l] << l;
    warp_barrier();
    return r;
}

// ---- the C interface -------------------------------------------------------------------
extern "C" {

// order: 0 forward, 1 reverse, 2 random (seed); log: record shared accesses for
// hz_emul_bank_report; drop: comma-separated barrier sites to skip (for tests).
void hz_emul_config(int order, unsigned seed, int log, const char *drop)
{
    g_order = order;
    g_rng.seed(seed);
    g_log = log != 0;
    g_drop.clear();
    if (drop)
        for (const char *p = drop; *p;) {
            const char *e = strchr(p, ',');
            const size_t len = e ? (size_t)(e - p) : strlen(p);
            if (len) g_drop.insert(std::string(p, len));
            p += len + (e ? 1 : 0);
        }
    g_stats.clear();
}

// Sizes of a kernel's parameters into sizes[0 .. max); returns their number, -1 if unknown.
int hz_emul_param_sizes(const char *name, int *sizes, int max)
{
    auto it = kernels().find(name);
    if (it == kernels().end()) return -1;
    const auto &s = it->second.sizes;
    for (int i = 0; i < (int)s.size() && i < max; i++) sizes[i] = s[i];
    return (int)s.size();
}

// Run kernel `name` over a gx x gy grid of bx-thread CTAs with `shared` bytes of
// dynamic shared memory. Returns 0, or -1 with the reason in err.
int hz_emul_launch(const char *name, unsigned gx, unsigned gy, unsigned bx, size_t shared, void **params, char *err,
                   int errlen)
{
    g_error.clear();
    auto it = kernels().find(name);
    if (it == kernels().end()) {
        snprintf(err, errlen, "unknown kernel %s", name);
        return -1;
    }
    if (bx == 0 || bx > kMaxThreads || gx == 0 || gy == 0) {
        snprintf(err, errlen, "bad launch geometry");
        return -1;
    }
    if (!g_stacks) {
        g_stacks = (char *)mmap(nullptr, kStack * kMaxThreads, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (g_stacks == (char *)MAP_FAILED) {
            g_stacks = nullptr;
            snprintf(err, errlen, "no memory for fiber stacks");
            return -1;
        }
    }
    it->second.prepare(params);
    g_shared_size = shared;
    g_shared.assign(shared + 16, 0);
    g_written.assign(shared + 16, 0);
    hz_emul_shared = g_shared.data();
    gridDim = {gx, gy, 1};
    blockDim = {bx, 1, 1};
    for (unsigned y = 0; y < gy; y++)
        for (unsigned x = 0; x < gx; x++) {
            blockIdx = {x, y, 0};
            std::fill(g_shared.begin(), g_shared.end(), (unsigned char)(0xA5 ^ (x * 7 + y)));
            std::fill(g_written.begin(), g_written.end(), 0);
            if (run_cta() != 0) {
                snprintf(err, errlen, "%s: %s", name, g_error.c_str());
                return -1;
            }
        }
    return 0;
}

// Bank statistics since hz_emul_config, one line per site:
// "site instances conflicted worst_ways wavefronts ideal". Returns the length needed.
int hz_emul_bank_report(char *buf, int len)
{
    std::string out;
    for (auto &kv : g_stats) {
        char line[256];
        snprintf(line, sizeof line, "%s %lld %lld %d %lld %lld\n", kv.first.c_str(), (long long)kv.second.instances,
                 (long long)kv.second.conflicted, kv.second.worst_ways, (long long)kv.second.wavefronts,
                 (long long)kv.second.ideal);
        out += line;
    }
    if (buf && len > 0) {
        strncpy(buf, out.c_str(), (size_t)len - 1);
        buf[len - 1] = 0;
    }
    return (int)out.size() + 1;
}

} // extern "C"
