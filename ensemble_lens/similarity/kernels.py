"""Kernel CKA with the three HSIC estimators of the literature, and its per-network states.

``CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` on sample-by-sample Gram matrices.
Each estimator is the cosine between two transformed Gram matrices, which is what lets
:func:`~ensemble_lens.similarity.pairwise` do the per-network work once:

- ``gretton`` (Gretton et al. 2005; Kornblith et al. 2019): double-centred ``HKH``.
- ``lange`` (Lange et al. 2023, "Deep networks as paths on the manifold of neural
  representations"): ``HKH`` with its diagonal set to zero (the registry's
  ``centered-zero_diagonal-cosine``).
- ``song`` (Song et al. 2012, unbiased HSIC): the U-centred Gram matrix of Szekely & Rizzo
  (2014): zero diagonal, ``K~_ij - r_i/(n-2) - r_j/(n-2) + s/((n-1)(n-2))`` off it, where
  ``r`` are the row sums and ``s`` the total of ``K~`` (``K`` with a zeroed diagonal). The
  inner product of two U-centred matrices is ``n(n-3)`` times Song's unbiased HSIC.

Kernels: ``linear`` ``x.y``; ``rbf`` ``exp(-|x-y|^2 / (2 sigma^2))``; ``laplace``
``exp(-|x-y| / sigma)`` (Euclidean norm). ``sigma=None`` uses the median heuristic of
Kornblith et al. (2019): ``sigma = frac * sqrt(median |x_i - x_j|^2)`` over distinct samples.
A given ``sigma`` is absolute, as in the registry's ``rbf-sigma=1.0`` names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
from scipy.spatial.distance import pdist, squareform

from ..errors import ShapeError
from ._input import center, prepare_pair, safe_scale
from ._meta import note_resolved

__all__ = ["kernel_cka"]

Kernel = Literal["linear", "rbf", "laplace"]
HSIC = Literal["gretton", "lange", "song"]
_KERNELS = ("linear", "rbf", "laplace")
_HSIC = ("gretton", "lange", "song")


def check_kernel(kernel: str, hsic: str, sigma: float | None, frac: float) -> None:
    """Raise for an unknown kernel or estimator, a non-positive sigma or fraction."""
    if kernel not in _KERNELS:
        raise ShapeError(f"kernel: expected one of {_KERNELS}, got {kernel!r}")
    if hsic not in _HSIC:
        raise ShapeError(f"hsic: expected one of {_HSIC}, got {hsic!r}")
    if sigma is not None and not sigma > 0:
        raise ShapeError(f"sigma: expected a positive kernel width, got {sigma}")
    if not frac > 0:
        raise ShapeError(f"frac: expected a positive fraction of the median distance, got {frac}")


def gram(x: np.ndarray, kernel: str, sigma: float | None, frac: float = 1.0) -> np.ndarray:
    """(n, n) Gram matrix of one representation (linear: of the centred data)."""
    return gram_sigma(x, kernel, sigma, frac)[0]


def gram_sigma(
    x: np.ndarray, kernel: str, sigma: float | None, frac: float = 1.0
) -> tuple[np.ndarray, float | None]:
    """The Gram matrix and the kernel width used (None for the linear kernel)."""
    if kernel == "linear":
        xc = center(x)
        return xc @ xc.T, None
    d2 = pdist(x, "sqeuclidean")
    if sigma is None:
        med = float(np.median(d2))
        if med <= 0:
            raise ShapeError(f"{kernel} kernel: median distance between samples is 0; set sigma")
        s2 = frac**2 * med
    else:
        s2 = sigma**2
    k = np.exp(-d2 / (2 * s2)) if kernel == "rbf" else np.exp(-np.sqrt(d2 / s2))
    k = squareform(k)
    np.fill_diagonal(k, 1.0)
    return k, float(np.sqrt(s2))


class Described(np.ndarray):
    """A state vector with ``info``: what the per-network work resolved (the sigma used).
    ``info`` survives pickling (states cross process boundaries on a process executor)."""

    info: dict[str, Any]

    def __reduce__(self) -> Any:
        fn, args, state = cast(tuple[Any, Any, Any], super().__reduce__())
        return fn, args, (state, getattr(self, "info", None))

    def __setstate__(self, state: Any) -> None:
        base, info = state
        super().__setstate__(base)
        if info is not None:
            self.info = info


def transform(k: np.ndarray, hsic: str) -> np.ndarray:
    """The estimator's transformed Gram matrix (in place on ``k``)."""
    n = k.shape[0]
    if hsic in ("gretton", "lange"):
        mc = k.mean(axis=0)
        k -= mc[None, :]
        k -= mc[:, None]
        k += mc.mean()
        if hsic == "lange":
            np.fill_diagonal(k, 0.0)
        return k
    np.fill_diagonal(k, 0.0)
    r = k.sum(axis=0)
    s = r.sum()
    k -= r[None, :] / (n - 2)
    k -= r[:, None] / (n - 2)
    k += s / ((n - 1) * (n - 2))
    np.fill_diagonal(k, 0.0)
    return k


def packed(m: np.ndarray) -> np.ndarray:
    """Symmetric ``m`` as a vector ``v`` with ``v.w = <m, w>_F`` for packed ``w``: the upper
    triangle times sqrt(2) followed by the diagonal (half the memory of the full matrix)."""
    iu = np.triu_indices(m.shape[0], 1)
    return np.concatenate([np.sqrt(2.0) * m[iu], np.diag(m)])


@dataclass(frozen=True)
class LinearState:
    """Feature-space state of linear-kernel CKA: centred data, row norms and self-HSIC."""

    xc: np.ndarray
    rows: np.ndarray
    self_hsic: float


def _linear_hsic(a: LinearState, b: LinearState, hsic: str) -> float:
    """``<T(K_a), T(K_b)>`` from features (no n x n matrix): O(n d_a d_b)."""
    xy = float(np.linalg.norm(a.xc.T @ b.xc) ** 2)
    n = a.xc.shape[0]
    if hsic == "lange":
        return xy - float(a.rows @ b.rows)
    if hsic == "song":
        corr = n / (n - 2.0) * float(a.rows @ b.rows)
        return xy - corr + float(a.rows.sum() * b.rows.sum()) / ((n - 1) * (n - 2))
    return xy


def kernel_state(
    x: np.ndarray,
    kernel: str = "linear",
    hsic: str = "gretton",
    sigma: float | None = None,
    frac: float = 1.0,
) -> Any:
    """Per-network work of kernel CKA: the normalised packed transformed Gram matrix
    (non-linear kernels) or the centred features (linear kernel)."""
    if kernel != "linear":
        return kernel_parts(x, kernel, hsic, sigma, frac)[0]
    xc = center(safe_scale(x))  # scale-free: values beyond 2**+-64 rescaled exactly
    rows = np.einsum("ij,ij->i", xc, xc)
    st = LinearState(xc, rows, 0.0)
    return LinearState(xc, rows, _positive(_linear_hsic(st, st, hsic), hsic))


def kernel_parts(
    x: np.ndarray, kernel: str, hsic: str, sigma: float | None, frac: float
) -> tuple[Described, float]:
    """State of a non-linear kernel (see :func:`kernel_state`) and the kernel-space scatter
    ``tr(H K H) = tr(K) - 1'K1 / n``: the squared norm of the centred feature map (for the
    linear kernel it would be ``|Xc|_F^2``), which the registry's derived Euclidean distance
    of RBF CKA uses."""
    if sigma is None:
        x = safe_scale(x)  # scale-free: values beyond 2**+-64 rescaled exactly
    k, used = gram_sigma(x, kernel, sigma, frac)
    scatter = float(np.trace(k) - k.sum() / k.shape[0])
    v = packed(transform(k, hsic))
    out = (v / np.sqrt(_positive(float(v @ v), hsic))).view(Described)
    out.info = {"sigma": used}
    note_resolved(out.info)
    return out, scatter


def kernel_combine(a: Any, b: Any, hsic: str = "gretton") -> float:
    """CKA of two states from :func:`kernel_state`."""
    if isinstance(a, LinearState):
        return _linear_hsic(a, b, hsic) / np.sqrt(a.self_hsic * b.self_hsic)
    return float(a @ b)


def _positive(v: float, hsic: str) -> float:
    if not v > 0:
        raise ShapeError(
            f"CKA ({hsic} HSIC): the HSIC of an input with itself is not positive ({v:.3g}); "
            "use more samples or another estimator"
        )
    return v


def kernel_cka(
    X: Any,
    Y: Any,
    kernel: Kernel = "linear",
    hsic: HSIC = "gretton",
    sigma: float | None = None,
    frac: float = 1.0,
) -> float:
    """CKA with a chosen kernel and HSIC estimator (see the module docstring).

    Parameters
    ----------
    X, Y : array-like, shapes (n, d1), (n, d2)
        Activations on the same samples, dims ("sample", "unit").
    kernel : {"linear", "rbf", "laplace"}
    hsic : {"gretton", "lange", "song"}
        Biased (Gretton, n >= 2), zero-diagonal (Lange) or unbiased (Song) estimator.
        ``song`` and ``lange`` need n >= 4 and may be negative.
    sigma : float, optional
        Absolute kernel width (rbf, laplace); default the median heuristic.
    frac : float
        Fraction of the median distance used when ``sigma`` is None.

    Returns
    -------
    float
        Symmetric; at most 1. Invariant to orthogonal maps and translation; to isotropic
        scaling for the linear kernel and for the others when ``sigma`` is None.
    """
    check_kernel(kernel, hsic, sigma, frac)
    scale_free = kernel == "linear" or sigma is None
    x, y = prepare_pair(X, Y, min_samples=2 if hsic == "gretton" else 4, rescale=scale_free)
    a = kernel_state(x, kernel, hsic, sigma, frac)
    b = kernel_state(y, kernel, hsic, sigma, frac)
    return float(np.clip(kernel_combine(a, b, hsic), -1.0, 1.0))
