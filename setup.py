"""Build helmholtz's C core (csrc/) and its Cython bindings.

No GPU or CUDA toolkit is needed: the CUDA kernels (csrc/*.cu) are compiled
at run time by CuPy. Set HELMHOLTZ_SANITIZE=1 to build with AddressSanitizer
and UndefinedBehaviorSanitizer (see `make sanitize`).
"""

import os
import shutil
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent
CSRC = HERE / "csrc"

C_SOURCES = [
    "hz_codec.c",
    "hz_entropy.c",
    "hz_kernels_portable.c",
    "hz_kernels_avx2.c",
    "hz_kernels_avx512.c",
    "hz_parallel.c",
    "hz_pool.c",
]

compile_args = ["-O3", "-std=gnu11", "-pthread", "-fno-strict-aliasing", "-fwrapv", "-Wall", "-Wno-unused-function", "-Wno-psabi"]
link_args = ["-pthread"]
if os.environ.get("HELMHOLTZ_SANITIZE"):
    compile_args = ["-O1", "-g", "-std=gnu11", "-pthread", "-fno-strict-aliasing", "-fwrapv", "-fno-omit-frame-pointer", "-Wno-psabi",
                    "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
    link_args = ["-pthread", "-fsanitize=address,undefined"]
if sys.platform == "win32":
    compile_args, link_args = ["/O2"], []


class build_py_with_csrc(build_py):
    """Ship the shared headers and CUDA sources so CuPy can compile them at run time."""

    def run(self):
        super().run()
        target = Path(self.build_lib) / "helmholtz" / "_csrc"
        target.mkdir(parents=True, exist_ok=True)
        for pattern in ("*.h", "*.cuh", "*.cu"):
            for path in CSRC.glob(pattern):
                shutil.copy2(path, target / path.name)


extension = Extension(
    "helmholtz._codec.native",
    sources=["helmholtz/_codec/native.pyx"] + [f"csrc/{name}" for name in C_SOURCES],
    include_dirs=["csrc"],
    extra_compile_args=compile_args,
    extra_link_args=link_args,
    depends=[f"csrc/{p.name}" for p in sorted(CSRC.glob("*.h"))],  # relative, as the sdist's manifest wants them
)

setup(
    ext_modules=__import__("Cython.Build", fromlist=["cythonize"]).cythonize(
        [extension],
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False, "cdivision": True},
    ),
    cmdclass={"build_py": build_py_with_csrc},
)
