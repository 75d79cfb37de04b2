"""Per-network states and pair combiners of measures that ``pairwise`` used to evaluate pair
by pair: squared CCA (plain and SVCCA), google/svcca's PWCCA, brain_language_nlp's in-sample
ridge, google/svcca's PLS singular values, and the registry's derived Euclidean distances.
The single-pair functions call the same code, so all pairs equal single pairs exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from ..errors import ShapeError
from ._input import center, prepare_pair, safe_scale
from ._linalg import Factor, factor_data, n_keep, singular_values
from ._meta import note_resolved
from .kernels import check_kernel, kernel_combine, kernel_parts
from .procrustes import shape_from_cross


def factor_state(x: np.ndarray) -> Factor:
    """Thin SVD of one network's centred (rescaled) data."""
    return factor_data(center(safe_scale(x)))


def squared_cca_combine(
    a: Factor, b: Factor, keep_variance: float | None = None, n_components: int | None = None
) -> float:
    """Mean squared canonical correlation of the kept principal components (all when neither
    ``keep_variance`` nor ``n_components`` is given)."""
    if keep_variance is None and n_components is None:
        kx, ky = a.lam.size, b.lam.size
    else:
        keep = 1.0 if keep_variance is None else keep_variance
        kx, ky = n_keep(a.lam, keep, n_components), n_keep(b.lam, keep, n_components)
    kxy = a.U[:, :kx].T @ b.U[:, :ky]  # type: ignore[index]
    return float(np.mean(np.clip(singular_values(kxy), 0.0, 1.0) ** 2))


def cca_combine(a: Factor, b: Factor, ridge: float = 0.0) -> float:
    """Mean canonical correlation of two factor states (relative ridge as :func:`mean_cca`)."""
    gx = _ridge_gain(a, ridge)
    gy = _ridge_gain(b, ridge)
    rho = singular_values(gx[:, None] * (a.U.T @ b.U) * gy[None, :])  # type: ignore[union-attr]
    return float(np.clip(rho, 0.0, 1.0).mean())


def _ridge_gain(f: Factor, ridge: float) -> np.ndarray:
    if ridge == 0:
        return np.ones_like(f.lam)
    lam_r = ridge * f.lam.sum() / f.V.shape[0]
    return np.sqrt(f.lam / (f.lam + lam_r))


def svcca_combine(
    a: Factor, b: Factor, keep_variance: float = 0.99, n_components: int | None = None
) -> float:
    """SVCCA of two factor states (mean canonical correlation of the kept components)."""
    kx, ky = n_keep(a.lam, keep_variance, n_components), n_keep(b.lam, keep_variance, n_components)
    note_resolved({"components": kx})
    note_resolved({"components": ky})
    kxy = a.U[:, :kx].T @ b.U[:, :ky]  # type: ignore[index]
    return float(np.clip(singular_values(kxy), 0.0, 1.0).mean())


@dataclass(frozen=True)
class GoogleState:
    """google/svcca's PWCCA per network: activations, their mean, centred copy and the
    pseudo-inverse square root of the covariance."""

    x: np.ndarray
    mean: np.ndarray
    xc: np.ndarray
    w: np.ndarray


def _inv_sqrt(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(np.linalg.pinv(c))
    return (v * np.sqrt(np.maximum(w, 0.0))) @ v.T


def google_state(x: np.ndarray) -> GoogleState:
    """One network's state (google/svcca needs fewer units than samples)."""
    x = safe_scale(x)
    n, d = x.shape
    if d >= n:
        raise ShapeError(
            f"pwcca variant='google' (google/svcca's code) needs fewer units than samples, "
            f"got {d} units on {n} samples; use variant='paper'"
        )
    mean = x.mean(axis=0)
    xc = x - mean
    c = xc.T @ xc / (n - 1)
    return GoogleState(x, mean, xc, _inv_sqrt(c / np.abs(c).max()) / np.sqrt(np.abs(c).max()))


def google_pwcca_combine(a: GoogleState, b: GoogleState) -> float:
    """google/svcca's ``compute_pwcca`` of a pair (see :func:`.cca.pwcca`)."""
    n = a.x.shape[0]
    cxy = a.xc.T @ b.xc / (n - 1)
    u, rho, vt = np.linalg.svd(a.w @ cxy @ b.w)
    s, rot = (a, u.T) if a.x.shape[1] <= b.x.shape[1] else (b, vt)
    dirns = rot @ s.xc.T + s.mean[:, None]
    q, _ = np.linalg.qr(dirns.T)
    wts = np.abs(q.T @ s.x).sum(axis=1)[: rho.size]
    return float(wts @ np.abs(rho) / wts.sum())


def ridge_state(x: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """brain_language_nlp's ridge per network: the data and ``(X^T X + lam I)^{-1} X^T``."""
    return x, np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T)


def ridge_r2_combine(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Mean over ``b``'s units of the in-sample R^2 of its ridge fit from ``a`` (no intercept)."""
    (x, proj), (y, _) = a, b
    var = y.var(axis=0)
    sse = ((y - x @ (proj @ y)) ** 2).mean(axis=0)
    return float(np.mean(1.0 - np.divide(sse, var, out=np.full_like(sse, np.inf), where=var > 0)))


def ridge_r2_combine_reverse(a: Any, b: Any) -> float:
    return ridge_r2_combine(b, a)


def pls_state(x: np.ndarray) -> np.ndarray:
    """Centred data over ``sqrt(n - 1)``: a pair's cross-covariance is one product."""
    return center(x) / np.sqrt(x.shape[0] - 1)


def pls_combine(a: np.ndarray, b: np.ndarray) -> float:
    """google/svcca's PLS "mean": mean singular value of the cross-covariance."""
    return float(singular_values(a.T @ b).mean())


@dataclass(frozen=True)
class EuclideanState:
    """A score's state with the squared norm of the centred (or kept-PCA) data, or of the
    centred feature map in an RBF kernel's feature space."""

    score: Any
    ss: float

    @property
    def info(self) -> Any:
        """What the score's per-network work resolved (the sigma used)."""
        return getattr(self.score, "info", None)


def euclidean_state(x: np.ndarray, prepare: Any, pca: tuple[float, int | None] | None) -> Any:
    """The base score's state and the squared norm the registry's derived distance uses."""
    xc = center(x)
    if pca is None:
        ss = float(np.sum(xc * xc))
    else:
        lam = np.linalg.svd(xc, compute_uv=False) ** 2
        ss = float(lam[: n_keep(lam, pca[0], pca[1])].sum())
    return EuclideanState(prepare(x), ss)


def kernel_euclidean_state(
    x: np.ndarray, kernel: str, hsic: str, sigma: float | None = None, frac: float = 1.0
) -> EuclideanState:
    """RBF CKA's state with its kernel-space scatter ``tr(H K H)`` (see
    :func:`kernel_feature_distance`)."""
    return EuclideanState(*kernel_parts(x, kernel, hsic, sigma, frac))


def kernel_feature_distance(
    X: Any,
    Y: Any,
    kernel: str = "rbf",
    hsic: str = "gretton",
    sigma: float | None = None,
    frac: float = 1.0,
    squared: bool = False,
) -> float:
    """The registry's ``cka-kernel=(rbf...)-hsic=h-distance=euclidean`` as most of its
    implementations compute it: the derived distance of the linear-kernel name applied to
    the square root of each centred Gram matrix ``H K H`` as features, i.e.
    ``sqrt(a + b - 2 sqrt(a b) s)`` with ``s`` the kernel CKA and ``a = tr(H K_X H)``,
    ``b = tr(H K_Y H)`` the squared norms of the centred feature maps (not of the inputs).
    Symmetric; 0 for equal inputs up to rounding (``pairwise`` writes an exact 0 diagonal);
    invariant to orthogonal maps and translation of either input (and to isotropic scaling
    when ``sigma`` is None)."""
    check_kernel(kernel, hsic, sigma, frac)
    x, y = prepare_pair(X, Y, min_samples=2 if hsic == "gretton" else 4, rescale=sigma is None)
    a = kernel_euclidean_state(x, kernel, hsic, sigma, frac)
    b = kernel_euclidean_state(y, kernel, hsic, sigma, frac)
    return euclidean_combine(a, b, partial(kernel_combine, hsic=hsic), squared)


def euclidean_combine(a: EuclideanState, b: EuclideanState, combine: Any, squared: bool) -> float:
    """``sqrt(|Xc|^2 + |Yc|^2 - 2 |Xc| |Yc| s)`` from the base score ``s`` of the pair."""
    s = min(max(float(combine(a.score, b.score)), -1.0), 1.0)
    d2 = max(a.ss + b.ss - 2.0 * np.sqrt(a.ss * b.ss) * s, 0.0)
    return d2 if squared else float(np.sqrt(d2))


@dataclass(frozen=True)
class GramState:
    """Raw (uncentred) data and the squared Frobenius norm of its linear Gram matrix."""

    x: np.ndarray
    kk: float


def gram_state(x: np.ndarray) -> GramState:
    return GramState(x, float(np.linalg.norm(x.T @ x) ** 2))


def gram_euclidean(a: GramState, b: GramState) -> float:
    """``|X X^T - Y Y^T|_F`` from the feature-space products (no n x n matrix)."""
    cross = float(np.linalg.norm(a.x.T @ b.x) ** 2)
    return float(np.sqrt(max(a.kk + b.kk - 2.0 * cross, 0.0)))


def gram_euclidean_fn(X: Any, Y: Any) -> float:
    """nn_similarity_index's ``euclidean`` (the registry's name): the Frobenius distance
    between the raw linear Gram matrices ``X X^T`` and ``Y Y^T``. Symmetric; invariant to
    orthogonal maps of either input; not to translation or scaling."""
    x, y = prepare_pair(X, Y, rescale=False)
    return gram_euclidean(gram_state(x), gram_state(y))


def isc_state(x: np.ndarray) -> np.ndarray:
    """Sum of one network's z-scored units over ``d sqrt(n)``: a pair's mean unit-by-unit
    Pearson correlation is the dot product of two states."""
    xc = center(safe_scale(x))
    z = xc / np.sqrt(np.einsum("ij,ij->j", xc, xc) / x.shape[0])
    return z.sum(axis=1) / (x.shape[1] * np.sqrt(x.shape[0]))


def isc_fn(X: Any, Y: Any) -> float:
    """nnsrm-neurips18's ``isc`` (the registry's name): the mean over every unit i of X and
    unit j of Y of the Pearson correlation of their activations over samples. Symmetric;
    invariant to per-unit affine maps; in [-1, 1]."""
    x, y = prepare_pair(X, Y)
    return float(isc_state(x) @ isc_state(y))


def flat_cosine(X: Any, Y: Any) -> float:
    """The registry's ``cosine``: cosine between the two activation matrices as vectors
    (same shape; not invariant to unit order)."""
    x, y = prepare_pair(X, Y, rescale=False)
    if x.shape != y.shape:
        raise ShapeError(
            f"cosine: compares two matrices entry by entry, expected the same shape, got "
            f"{x.shape} and {y.shape}"
        )
    return float(np.sum(x * y) / np.sqrt(np.sum(x * x) * np.sum(y * y)))


def flat_state(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x)).ravel()


@dataclass(frozen=True)
class CentredState:
    """One network's centred (optionally standardised or unit-norm) data and squared norm."""

    xc: np.ndarray
    ss: float


def centred_state(
    x: np.ndarray,
    normalize: bool = False,
    standardize: bool = False,
    rescale: bool = False,
    centre: bool = True,
) -> CentredState:
    """The data the Procrustes and permutation measures compare, prepared once."""
    if rescale:
        x = safe_scale(x)
    xc = center(x) if centre or standardize else x
    if standardize:
        xc = xc / xc.std(axis=0)
    if normalize:
        xc = xc / np.linalg.norm(xc)
    return CentredState(xc, float(np.sum(xc * xc)))


def _same(a: CentredState, b: CentredState) -> bool:
    return a.xc.shape == b.xc.shape and np.array_equal(a.xc, b.xc)


def procrustes_combine(a: CentredState, b: CentredState, squared: bool = False) -> float:
    """``sqrt(|Xc|^2 + |Yc|^2 - 2 |Xc^T Yc|_*)`` (exactly 0 for identical inputs)."""
    if _same(a, b):
        return 0.0
    sq = max(a.ss + b.ss - 2 * float(singular_values(a.xc.T @ b.xc).sum()), 0.0)
    return sq if squared else float(np.sqrt(sq))


def _assigned(a: CentredState, b: CentredState) -> float:
    from scipy.optimize import linear_sum_assignment

    c = a.xc.T @ b.xc
    rows, cols = linear_sum_assignment(c, maximize=True)
    return float(c[rows, cols].sum())


def permutation_angle_combine(a: CentredState, b: CentredState) -> float:
    """Angle after the best unit permutation (exactly 0 for identical inputs)."""
    if _same(a, b):
        return 0.0
    cos = _assigned(a, b) / np.sqrt(a.ss * b.ss)
    return float(np.arccos(np.clip(cos, -1.0, 1.0)))


def permutation_distance_combine(a: CentredState, b: CentredState, squared: bool = False) -> float:
    """``min_P |X - Y P|`` (the narrower input zero-padded) from the prepared data."""
    sq = max(a.ss + b.ss - 2.0 * _assigned(a, b), 0.0)
    return sq if squared else float(np.sqrt(sq))


def raw_shape_state(x: np.ndarray) -> tuple[np.ndarray, Factor]:
    """netrep's raw-scale shape metric per network: the data and its factorisation."""
    return x, factor_data(center(x))


def raw_shape_combine(
    a: tuple[np.ndarray, Factor], b: tuple[np.ndarray, Factor], alpha: float
) -> float:
    """Angular shape distance with netrep's unnormalised scatter (exactly 0 for identical)."""

    (x, fx), (y, fy) = a, b
    if x.shape == y.shape and np.array_equal(x, y):
        return 0.0
    return shape_from_cross(fx, fy, fx.U.T @ fy.U, alpha, x.shape[0])  # type: ignore[union-attr]
