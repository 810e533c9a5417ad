"""One array interface for the challenge product: NumPy on the CPU, PyTorch or CuPy on a GPU.

Every backend computes the same exact integer product ``C = A·B`` of int8 matrices with int32
results, and takes and returns NumPy arrays (the challenge's matrices are expanded on the host, see
:mod:`drakewell.proofs.gpu`, so every backend multiplies the same bytes).

Exactness. ``|a·b| ≤ 128·128 = 2**14`` for int8 entries, so a sum of ``m`` products is an integer of
magnitude at most ``m · 2**14``, and every partial sum of it is too, in whatever order a BLAS adds:

- ``numpy``: float32 GEMM over blocks of :data:`F32_EXACT_BLOCK` = 1024 inner indices. Every partial
  sum is an integer ≤ 1024 · 2**14 = 2**24 in magnitude, and float32 holds every such integer
  exactly, so each block product is exact; the blocks are added in int32 (``n · 2**14 < 2**31`` for
  ``n ≤ 2**16``). float32 runs about twice as fast as float64 on the CPU and needs half the memory.
- ``torch`` (CUDA): ``torch._int_mm``, int8 tensor cores with int32 accumulation (exact by
  construction) when the shapes allow it (rows > 16, inner and column counts multiples of 8); else
  float64 GEMM (exact: ``n · 2**14 < 2**53``).
- ``cupy``: float64 GEMM on the device (cuBLAS DGEMM; exact for the same reason; TF32 never applies
  to float64).

GPU libraries are imported only when such a backend is asked for; ``auto`` picks torch with CUDA,
then CuPy with a device, then NumPy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from drakewell.errors import ProofError

F32_EXACT_BLOCK = 1024  # 1024 · 2**14 = 2**24: every partial sum is exact in float32
MAX_N = 1 << 16  # n · 2**14 < 2**31: a row of C fits int32


@dataclass(frozen=True)
class Product:
    """``C = A·B`` (int32, on the host) and the seconds the device spent on it (transfers included)."""

    c: np.ndarray
    seconds: float
    backend: str
    device: str


def exact_int8_matmul_numpy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact int32 ``a·b`` of int8 matrices through float32 BLAS in exact blocks (module docstring)."""
    _check_operands(a, b)
    m, inner = a.shape
    out = np.zeros((m, b.shape[1]), dtype=np.int32)
    for lo in range(0, inner, F32_EXACT_BLOCK):
        hi = min(inner, lo + F32_EXACT_BLOCK)
        block = a[:, lo:hi].astype(np.float32) @ b[lo:hi].astype(np.float32)
        out += block.astype(np.int32)
    return out


def _check_operands(a: np.ndarray, b: np.ndarray) -> None:
    if a.dtype != np.int8 or b.dtype != np.int8:
        raise ProofError(
            f"operands are {a.dtype} and {b.dtype}, not int8",
            hint="expand the challenge with expand_matrices()",
        )
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ProofError(
            f"shapes {a.shape} and {b.shape} do not multiply", hint="pass (m, n) and (n, p) arrays"
        )
    if a.shape[1] > MAX_N:
        raise ProofError(f"inner size {a.shape[1]} exceeds {MAX_N}", hint="int32 results hold n ≤ 65536")


def _numpy_product(a: np.ndarray, b: np.ndarray) -> Product:
    t0 = time.perf_counter()
    c = exact_int8_matmul_numpy(a, b)
    return Product(c, time.perf_counter() - t0, "numpy", "cpu")


def _torch_product(a: np.ndarray, b: np.ndarray) -> Product:
    import torch

    _check_operands(a, b)
    dev = torch.device("cuda")
    t0 = time.perf_counter()
    ta = torch.from_numpy(np.ascontiguousarray(a)).to(dev)
    tb = torch.from_numpy(np.ascontiguousarray(b)).to(dev)
    m, inner = a.shape
    if m > 16 and inner % 8 == 0 and b.shape[1] % 8 == 0:
        tc = torch._int_mm(ta, tb)
    else:
        tc = torch.matmul(ta.to(torch.float64), tb.to(torch.float64)).to(torch.int32)
    c = tc.cpu().numpy()
    torch.cuda.synchronize()
    return Product(c, time.perf_counter() - t0, "torch", torch.cuda.get_device_name(dev))


def _cupy_product(a: np.ndarray, b: np.ndarray) -> Product:
    import cupy

    _check_operands(a, b)
    t0 = time.perf_counter()
    ca = cupy.asarray(a).astype(cupy.float64)
    cb = cupy.asarray(b).astype(cupy.float64)
    c = cupy.asnumpy(cupy.matmul(ca, cb).astype(cupy.int32))
    cupy.cuda.runtime.deviceSynchronize()
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    return Product(
        c, time.perf_counter() - t0, "cupy", name.decode() if isinstance(name, bytes) else str(name)
    )


def _torch_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _cupy_available() -> bool:
    try:
        import cupy
    except ImportError:
        return False
    try:
        return int(cupy.cuda.runtime.getDeviceCount()) > 0
    except Exception:  # no driver or no device: CuPy raises its own CUDA errors
        return False


BACKENDS: dict[str, Callable[[np.ndarray, np.ndarray], Product]] = {
    "numpy": _numpy_product,
    "torch": _torch_product,
    "cupy": _cupy_product,
}
_AVAILABLE: dict[str, Callable[[], bool]] = {
    "numpy": lambda: True,
    "torch": _torch_available,
    "cupy": _cupy_available,
}


def available_backends() -> list[str]:
    """Backends that can run here, in the order ``auto`` tries them (GPU first)."""
    return [name for name in ("torch", "cupy", "numpy") if _AVAILABLE[name]()]


def resolve_backend(name: str = "auto") -> str:
    """``auto`` → the first available backend; a named one must be available here."""
    if name == "auto":
        return available_backends()[0]
    if name not in BACKENDS:
        raise ProofError(f"unknown array backend {name!r}", hint=f"use one of auto, {', '.join(BACKENDS)}")
    if not _AVAILABLE[name]():
        raise ProofError(
            f"array backend {name!r} is not usable on this machine (library or GPU missing)",
            hint="install the 'gpu' extra on a machine with an NVIDIA GPU, or use --backend numpy",
        )
    return name


def multiply(a: np.ndarray, b: np.ndarray, backend: str = "auto") -> Product:
    """Exact int32 ``a·b`` of int8 matrices on the named backend (see module docstring)."""
    return BACKENDS[resolve_backend(backend)](a, b)
