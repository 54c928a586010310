"""Type stubs for the compiled C core (helmholtz/_codec/native.pyx)."""

from typing import Any, Sequence

import numpy as np
import numpy.typing as npt

STAGES: tuple[str, ...]

def kernel_name() -> str: ...
def supported_kernels() -> list[str]: ...
def use_kernels(name: str) -> None: ...
def cycles_per_tick() -> float: ...
def stage_ticks(images: npt.NDArray[np.uint8], quality: int, subsampling: str, repeats: int) -> dict[str, int]: ...
def empty(shape: Sequence[int], dtype: Any) -> npt.NDArray[Any]: ...
def set_buffer_cache(nbytes: int) -> int: ...

class CpuBackend:
    name: str
    device: str
    def __init__(self) -> None: ...
    def roundtrip(
        self, images: npt.NDArray[np.uint8], qualities: npt.NDArray[np.int32], subsampling: str, num_threads: int
    ) -> npt.NDArray[np.uint8]: ...
    def forward(
        self,
        images: npt.NDArray[np.uint8],
        qualities: npt.NDArray[np.int32],
        subsampling: str,
        num_threads: int,
        out: list[list[npt.NDArray[np.int16]]] | None = None,
    ) -> list[list[npt.NDArray[np.int16]]]: ...
    def bits(
        self,
        images: npt.NDArray[np.uint8],
        qualities: npt.NDArray[np.int32],
        subsampling: str,
        optimize: bool,
        num_threads: int,
    ) -> npt.NDArray[np.int64]: ...
    def reconstruct(
        self,
        components: Sequence[npt.NDArray[np.int16]],
        tables: npt.NDArray[np.uint16],
        height: int,
        width: int,
        subsampling: str,
        num_threads: int,
    ) -> npt.NDArray[np.uint8]: ...

class RaggedBatch:
    n: int
    shapes: list[tuple[int, ...]]
    def __init__(self, images: list[Any], name: str = "images") -> None: ...
    def channels(self, i: int) -> int: ...
    def run(
        self,
        qualities: npt.NDArray[np.int32],
        subsampling: str,
        pixels: bool,
        coefs: bool,
        bits: bool,
        optimize: bool,
        num_threads: int,
    ) -> tuple[
        list[npt.NDArray[np.uint8]] | None, list[list[npt.NDArray[np.int16]]] | None, npt.NDArray[np.int64] | None
    ]: ...
    def encode(
        self,
        qualities: npt.NDArray[np.int32],
        tables: npt.NDArray[np.uint16],
        subsampling: str,
        optimize: bool,
        num_threads: int,
        gray_subsampling: str | None = None,
    ) -> list[bytes]: ...

# Entropy coding (_entropy_native.pxi)
def entropy_bits(comps: tuple, h_samp: int, v_samp: int, optimize: bool, num_threads: int) -> npt.NDArray[np.int64]: ...
def entropy_frequencies(
    comps: tuple, h_samp: int, v_samp: int, num_threads: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def entropy_encode(
    comps: tuple, h_samp: int, v_samp: int, height: int, width: int, tables: npt.NDArray[np.uint16], optimize: bool, num_threads: int
) -> list[bytes]: ...
def optimal_table(freq: npt.ArrayLike) -> tuple[bytes, bytes]: ...
