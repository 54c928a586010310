"""Type stubs for the compiled C core (helmholtz/_codec/native.pyx)."""

from typing import Sequence

import numpy as np
import numpy.typing as npt

def kernel_name() -> str: ...

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
    def reconstruct(
        self,
        components: Sequence[npt.NDArray[np.int16]],
        tables: npt.NDArray[np.uint16],
        height: int,
        width: int,
        subsampling: str,
        num_threads: int,
    ) -> npt.NDArray[np.uint8]: ...
