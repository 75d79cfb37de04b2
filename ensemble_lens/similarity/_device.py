"""Where the moments pass runs: numpy on the CPU (BLAS ``dsyrk``/``dgemm``), or torch GEMMs on a
device.

``device`` follows the study's ``execution.device``: ``"cpu"`` is the numpy path, unchanged;
``"cuda"`` is torch on the current CUDA device (an error when torch sees none); ``"auto"`` is
``"cuda"`` when :func:`torch.cuda.is_available` and the numpy path otherwise; ``"torch-cpu"``
forces the torch path on the CPU (what the tests run where there is no GPU, and the baseline of
``scripts/bench_scale.py --device``).

Torch is imported here, lazily, and only when a torch path is asked for: ``import
ensemble_lens.similarity`` stays free of torch, and the numpy path never loads it.

The torch path accumulates the same shifted sums as the numpy path, chunk by chunk, in a
float64 accumulator on the device: with ``precision="float64"`` each chunk's product is one
float64 GEMM of all networks side by side (``Z^T Z``, ``D x D``); with ``"float32"`` a chunk is
cut into sub-chunks of :data:`FLOAT32_ROWS` rows whose products are float32 GEMMs (float32
accumulation over at most that many rows), each added into the float64 accumulator (the numpy
path does the same with BLAS ``ssyrk``/``sgemm``). Only the float32 products need the default
full float32 matmul precision (``torch.get_float32_matmul_precision() == "highest"``); TF32
("high") would lose ~3 digits.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ..errors import BackendUnavailableError, ConfigError

__all__ = ["Device", "Precision", "TorchSums", "check_device", "moments_backend"]

Device = Literal["cpu", "cuda", "auto", "torch-cpu"]
Precision = Literal["float64", "float32"]
DEVICES = ("cpu", "cuda", "auto", "torch-cpu")
PRECISIONS = ("float64", "float32")

#: Rows of one float32 product of the float32 path (float32 sums over at most this many rows).
FLOAT32_ROWS = 1024


def check_device(device: str, precision: str = "float64", where: str = "device") -> None:
    """Refuse an unknown ``device`` or ``precision`` name (no torch import)."""
    if device not in DEVICES:
        raise ConfigError(
            f"{where}: expected one of {', '.join(map(repr, DEVICES))}, got {device!r}"
        )
    if precision not in PRECISIONS:
        raise ConfigError(f"precision: expected 'float64' or 'float32', got {precision!r}")


def moments_backend(device: str, where: str = "device") -> str | None:
    """The torch device the moments pass runs on (``"cuda"`` or ``"cpu"``), or None for numpy.

    Raises
    ------
    BackendUnavailableError
        ``device="cuda"`` and torch sees no CUDA device.
    ConfigError
        An unknown name.
    """
    check_device(device, where=where)
    if device == "cpu":
        return None
    if device == "torch-cpu":
        return "cpu"
    import torch

    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise BackendUnavailableError(
            f"{where}: 'cuda' asked for, but torch {torch.__version__} sees no CUDA device; "
            "use 'auto' (falls back to cpu) or 'cpu'"
        )
    return "cuda" if has_cuda else None


Side = tuple[np.ndarray, "np.ndarray | None"]  # (shift or mean (w,), power-of-two scales or None)


def _host(part: np.ndarray) -> np.ndarray:
    """A chunk part torch can wrap without a copy when possible: native float32/float64, C
    order, writable (other dtypes become float64 here)."""
    if part.dtype != np.float32 and part.dtype != np.float64:
        part = part.astype(np.float64)
    return np.require(part, requirements=["C", "W"])


def places_on_host(device: Any) -> bool:
    """Whether a chunk's parts are placed side by side (and cast to float64) by numpy before
    they reach ``device``: on the CPU, where numpy does it ~8x faster than torch's CPU copy;
    elsewhere the parts travel as read (half the bytes for float32) and are cast there."""
    return bool(device.type == "cpu")


class TorchSums:
    """Float64 accumulators of ``sum z`` and ``sum za^T zb`` on a torch device.

    Each chunk's parts (one (rows, d_k) array per network, as read, float32 for recorded
    activations) are uploaded as they are, then placed side by side, rescaled and shifted in
    float64 on the device: the host only reads and checks them.

    Parameters
    ----------
    device : str
        A torch device name (``"cuda"``, ``"cpu"``).
    precision : {"float64", "float32"}
        Dtype of the per-chunk GEMMs; the accumulators are float64 either way.
    side_a, side_b : (shift, scales)
        Per-unit shift (the first chunk's mean, or the mean) and power-of-two scales (or None)
        of each side; ``side_b=None``: the self product ``z^T z``, with ``sum z``.
    """

    def __init__(self, device: str, precision: str, side_a: Side, side_b: Side | None = None):
        import torch

        self._torch = torch
        self._dev = torch.device(device)
        self._f32 = precision == "float32"
        self._sides = [self._on_device(side_a)]
        if side_b is not None:
            self._sides.append(self._on_device(side_b))
        wa, wb = side_a[0].size, (side_a if side_b is None else side_b)[0].size
        f64 = torch.float64
        self.s = torch.zeros(wa, dtype=f64, device=self._dev) if side_b is None else None
        self.S = torch.zeros((wa, wb), dtype=f64, device=self._dev)

    def _on_device(self, side: Side) -> tuple[Any, Any]:
        return tuple(None if v is None else self._torch.from_numpy(v).to(self._dev) for v in side)

    def _upload(self, parts: list[np.ndarray], side: tuple[Any, Any]) -> Any:
        """(rows, w) float64 on the device: the parts side by side, times scales, minus shift."""
        shift, scales = side
        shape = (parts[0].shape[0], shift.shape[0])
        if places_on_host(self._dev):
            t = self._torch.from_numpy(np.hstack(parts, dtype=np.float64))
        else:  # float32 parts travel as they are and are cast on the device
            t = self._torch.empty(shape, dtype=self._torch.float64, device=self._dev)
            col = 0
            for part in parts:
                t[:, col : col + part.shape[1]] = self._torch.from_numpy(_host(part)).to(self._dev)
                col += part.shape[1]
        if scales is not None:
            t *= scales
        t -= shift
        return t

    def add(self, parts_a: list[np.ndarray], parts_b: list[np.ndarray] | None = None) -> None:
        """Add one chunk: the parts of side a and, for a cross product, of side b."""
        ta = self._upload(parts_a, self._sides[0])
        tb = ta if parts_b is None else self._upload(parts_b, self._sides[1])
        if self.s is not None:
            self.s += ta.sum(dim=0)
        if not self._f32:
            self.S.addmm_(ta.T, tb)
            return
        for r in range(0, ta.shape[0], FLOAT32_ROWS):
            a = ta[r : r + FLOAT32_ROWS].float()
            b = a if parts_b is None else tb[r : r + FLOAT32_ROWS].float()
            self.S.add_(a.T @ b)  # float32 product, added in float64 (no float64 temporary)

    def result(self) -> tuple[np.ndarray | None, np.ndarray]:
        """``(sum z or None, S)`` as float64 numpy; ``S`` is Fortran-ordered like the numpy
        path's accumulators (the transpose of the device matrix for a self product, which is
        the same matrix up to rounding; only its upper triangle is used)."""
        s = None if self.s is None else self.s.cpu().numpy()
        S = self.S.cpu().numpy()
        return s, (S.T if self.s is not None else np.asfortranarray(S))
