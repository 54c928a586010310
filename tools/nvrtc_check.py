"""Compile csrc/hz_kernels.cu with NVRTC exactly as helmholtz._codec.cuda does (no GPU needed).

Usage: python tools/nvrtc_check.py [arch ...]   (default: sm_80 sm_90 compute_80 compute_90)
Needs libnvrtc (e.g. pip install nvidia-cuda-nvrtc, or a CUDA toolkit); exits 0
with a message when it cannot be found. For real architectures (sm_XX) it asks
ptxas for its resource report and holds the architectures in $BUDGET_ARCHS
(default 90) to tools/ptxas_budget.py's budget: this is the code CuPy runs.
"""

import ctypes
import glob
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CSRC = ROOT / "csrc"
sys.path.insert(0, str(Path(__file__).resolve().parent))
import ptxas_budget  # noqa: E402


def nvrtc_candidates() -> list[str]:
    """libnvrtc files: pip wheels on sys.path first (nvidia/cu13/lib, nvidia/cuda_nvrtc/lib), then CUDA toolkits."""
    candidates = []
    for base in sys.path:
        candidates += sorted(glob.glob(os.path.join(base, "nvidia", "*", "lib", "libnvrtc.so*")))
    candidates += sorted(glob.glob("/usr/local/cuda*/lib64/libnvrtc.so*"))
    return [c for c in dict.fromkeys(candidates) if "builtins" not in os.path.basename(c) and ".alt." not in os.path.basename(c)]


def builtins_beside(lib_path: str) -> str | None:
    """The libnvrtc-builtins of the same folder (the newest, not the .alt variant), or None."""
    found = [p for p in glob.glob(os.path.join(os.path.dirname(lib_path), "libnvrtc-builtins.so*")) if ".alt." not in p]
    return sorted(found, key=len)[-1] if found else None


def find_nvrtc():
    """(libnvrtc, its path, the builtins preloaded for it), or (None, None, None).

    libnvrtc opens libnvrtc-builtins.so.<major.minor> by name when it compiles.
    A pip wheel's lib folder is not on the loader's path, and some wheels
    (nvidia-cuda-nvrtc 13.0) carry no RPATH to find it beside themselves, so
    the builtins of the same folder are loaded first, globally: the loader then
    finds them by that name.
    """
    for path in nvrtc_candidates() + ["libnvrtc.so"]:
        builtins = builtins_beside(path) if os.path.sep in path else None
        try:
            if builtins:
                ctypes.CDLL(builtins, mode=ctypes.RTLD_GLOBAL)
            return ctypes.CDLL(path), path, builtins
        except OSError:
            continue
    return None, None, None


def nvrtc_version(lib) -> str:
    major, minor = ctypes.c_int(), ctypes.c_int()
    return f"{major.value}.{minor.value}" if lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)) == 0 else "?"


def compile_nvrtc(lib, source: str, arch: str, name: str = "hz_kernels.cu", verbose: bool = False):
    prog = ctypes.c_void_p()
    rc = lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None)
    assert rc == 0, f"nvrtcCreateProgram failed: {rc}"
    # helmholtz/_cuda.py's options, plus what CuPy adds (-ftz=true, -arch=sm_XX for a cubin)
    opts = [b"-std=c++14", f"-I{CSRC}".encode(), b"-ftz=true", f"-arch={arch}".encode()]
    if verbose:
        opts.append(b"--ptxas-options=-v")
    arr = (ctypes.c_char_p * len(opts))(*opts)
    rc = lib.nvrtcCompileProgram(prog, len(opts), arr)
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, log)
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
    return rc, log.value.decode(errors="replace")


def main(argv):
    lib, path, builtins = find_nvrtc()
    if lib is None:
        print("nvrtc_check: libnvrtc not found (pip install nvidia-cuda-nvrtc); skipped")
        return 0
    print(f"nvrtc_check: NVRTC {nvrtc_version(lib)} from {path}; builtins: {builtins or 'found by the loader'}")
    archs = argv or ["sm_80", "sm_90", "compute_80", "compute_90"]
    source = (CSRC / "hz_kernels.cu").read_text()
    budget = {f"sm_{a}" for a in os.environ.get("BUDGET_ARCHS", "90").split()}
    status = 0
    for arch in archs:
        real = arch.startswith("sm_")
        rc, log = compile_nvrtc(lib, source, arch, verbose=real)
        print(f"NVRTC {arch}: {'ok' if rc == 0 else f'FAILED (nvrtcResult {rc})'}")
        if rc != 0:
            print(log)
        elif real:
            status |= ptxas_budget.check(f"NVRTC {arch}", log, arch in budget)
        elif log.strip():
            print(log)
        status |= rc != 0
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
