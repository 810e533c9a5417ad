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
  A few rows against all of ``B`` (the verifier's ``k``) go through :class:`RowsProduct`: ``B`` in
  cache-sized slices, in BLAS calls small enough to stay on the calling thread.
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

from drakewell.core.errors import ProofError

F32_EXACT_BLOCK = 1024  # 1024 · 2**14 = 2**24: every partial sum is exact in float32
MAX_N = 1 << 16  # n · 2**14 < 2**31: a row of C fits int32
FEW_ROWS = 64  # up to this many rows of ``a`` (a verifier's k), the product streams ``b`` in slices
SMALL_CALL_MNK = 1 << 18  # OpenBLAS runs a GEMM of m·n·k ≤ 65536·4 multiply-adds on one thread


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
    if m <= FEW_ROWS:
        return _few_rows_matmul(a, b)
    out = np.zeros((m, b.shape[1]), dtype=np.int32)
    for lo in range(0, inner, F32_EXACT_BLOCK):
        hi = min(inner, lo + F32_EXACT_BLOCK)
        block = a[:, lo:hi].astype(np.float32) @ b[lo:hi].astype(np.float32)
        out += block.astype(np.int32)
    return out


def _few_rows_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a·b`` for a few rows of ``a``: :class:`RowsProduct` fed all of ``b`` at once."""
    product = RowsProduct(a, b.shape[1])
    product.add(b)
    return product.result()


class RowsProduct:
    """Exact int32 ``a·B`` for a few int8 rows ``a`` (a verifier's ``k``), fed ``B`` in row slices.

    ``add`` takes the next rows of ``B`` in order, so ``B`` may arrive while it is being expanded.
    Two things make this product slow if done like the big one, and neither is arithmetic:

    - converting all of ``B`` to float32 first writes and reads back four times its bytes; here a
      slice of ``step`` rows is converted into one reused buffer and used while it is in cache;
    - a BLAS call big enough to be split across threads wakes the other cores and waits for the
      slowest; for ``k`` rows each call does little work, so on a busy machine the waiting costs
      ten times the arithmetic. Each call here multiplies ``m × step`` by ``step × step``, within
      :data:`SMALL_CALL_MNK` multiply-adds, a size OpenBLAS runs on the calling thread; NumPy's
      batched matmul makes the calls of one slice in a C loop, not a Python one.

    Partial sums add up in float32 over at most :data:`F32_EXACT_BLOCK` inner indices, then in
    int32, so every step is exact as in the blocked product.
    """

    def __init__(self, a: np.ndarray, cols: int) -> None:
        if a.dtype != np.int8 or a.ndim != 2 or a.shape[0] > FEW_ROWS:
            raise ProofError(
                f"rows of shape {a.shape} ({a.dtype}) are not a few int8 rows",
                hint=f"pass at most {FEW_ROWS} int8 rows; multiply() takes any product",
            )
        m = a.shape[0]
        step = 8
        while m * (2 * step) ** 2 <= SMALL_CALL_MNK and 2 * step <= F32_EXACT_BLOCK:
            step *= 2
        self.a, self.cols, self.step, self.done = a.astype(np.float32), int(cols), step, 0
        self.blocks, self.tail = divmod(self.cols, step)  # blocks: one batched matmul; tail: alone
        self.out = np.zeros((m, self.cols), dtype=np.int32)
        self.acc = np.zeros((self.blocks, m, step), dtype=np.float32)  # acc[j]: columns of block j
        self.part = np.empty_like(self.acc)
        self.acc_tail = np.zeros((m, self.tail), dtype=np.float32)
        self.buf = np.empty((step, self.cols), dtype=np.float32)
        self.summed = 0  # inner indices in acc since the last flush

    def add(self, b_rows: np.ndarray) -> None:
        """Multiply in the next ``len(b_rows)`` rows of ``B`` (int8, ``cols`` wide)."""
        if b_rows.dtype != np.int8 or b_rows.ndim != 2 or b_rows.shape[1] != self.cols:
            raise ProofError(
                f"rows of B have shape {b_rows.shape} ({b_rows.dtype}), not (r, {self.cols}) int8",
                hint="pass the next rows of B as expanded",
            )
        if self.done + len(b_rows) > self.a.shape[1]:
            raise ProofError(
                f"B has {self.a.shape[1]} rows; {self.done + len(b_rows)} were given", hint="stop at n"
            )
        step, width = self.step, self.blocks * self.step
        for lo in range(0, len(b_rows), step):
            rows = self.buf[: min(step, len(b_rows) - lo)]
            r = len(rows)
            if self.summed + r > F32_EXACT_BLOCK:
                self._flush()
            np.copyto(rows, b_rows[lo : lo + r], casting="unsafe")
            a_slice = self.a[:, self.done : self.done + r]
            if self.blocks:  # (m × r)·(r × step) for every column block, looped in C
                square = rows[:, :width].reshape(r, self.blocks, step).transpose(1, 0, 2)
                np.matmul(a_slice, square, out=self.part)
                self.acc += self.part
            if self.tail:
                self.acc_tail += a_slice @ rows[:, width:]
            self.summed += r
            self.done += r

    def _flush(self) -> None:
        m, width = self.a.shape[0], self.blocks * self.step
        self.out[:, :width] += self.acc.transpose(1, 0, 2).reshape(m, width).astype(np.int32)
        self.out[:, width:] += self.acc_tail.astype(np.int32)
        self.acc.fill(0.0)
        self.acc_tail.fill(0.0)
        self.summed = 0

    def result(self) -> np.ndarray:
        """``a·B`` (int32) once every row of ``B`` was added."""
        if self.done != self.a.shape[1]:
            raise ProofError(
                f"only {self.done} of {self.a.shape[1]} rows of B were added", hint="add all of B"
            )
        self._flush()
        return self.out


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
