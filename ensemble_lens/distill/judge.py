"""How a formula is judged: R^2, gradient agreement, exact recovery, support across members.

All functions take the formula as a sympy expression over ``sympy.Symbol(name)`` for the
named input columns of ``X`` (sample, variable), and return plain numbers or a small dataclass.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy

from .._arrays import as_matrix
from ..errors import ShapeError
from ._expr import (
    affine_fit,
    affine_r2,
    check_names,
    check_width,
    complexity,
    evaluate,
    r2_score,
    symbols_for,
    validate_xy,
)

logger = logging.getLogger(__name__)

#: the symbolic part of :func:`exact_recovery` is attempted only below this size (nodes)
MAX_SYMBOLIC_NODES = 60
#: how far (relative) :func:`exact_recovery` may move each float constant of a formula
CONST_TOL = 0.02
#: residual (relative to the formula's spread) above which moving constants is not tried
MOVE_GATE = 0.1
#: RMS residual (relative to the formula's spread) of an exact match: a formula of the law's
#: form reaches it once its constants move onto the law's (float64 evaluation is ~1e-12); a
#: look-alike of another form does not (1e-3 let ``1.296*u*exp(exp(asin(0.334*u))) - 1.025``
#: pass for ``1 + u/(1 - u/3)`` on u in [0, 1])
EXACT_RTOL = 1e-6
#: the residual of the strict verdict (unrounded constants, none moved): fitted constants
#: carry the data's precision, so a tight tolerance would reject every fitted formula
STRICT_RTOL = 1e-3


def r2(expr: sympy.Expr, X: object, y: object, names: Sequence[str]) -> float:
    """Coefficient of determination of the formula's predictions (no refit).

    Parameters
    ----------
    expr : sympy.Expr
        Formula over the symbols of ``names``.
    X : array-like, shape (sample, variable)
        Inputs, e.g. the test split or the task's extrapolation range.
    y : array-like, shape (sample,)
        Target values at those inputs.
    names : sequence of str
        Column names of ``X``.

    Returns
    -------
    float
        ``1 - SS_res / SS_tot``; ``-inf`` when the formula is non-finite on any sample (a
        formula that divides by zero inside the range is not a good description of it).

    Examples
    --------
    >>> import numpy as np, sympy
    >>> X = np.linspace(1, 2, 20)[:, None]
    >>> r2(2 * sympy.Symbol("x"), X, 2 * X[:, 0], ["x"])
    1.0
    """
    Xa, ya = validate_xy(X, y, names, "r2")
    check_names(expr, names, "r2")
    return r2_score(evaluate(expr, Xa, names), ya)


def formula_gradient(expr: sympy.Expr, X: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Input gradient of the formula at each sample, shape (sample, variable)."""
    cols = [evaluate(sympy.diff(expr, s), X, names) for s in symbols_for(names)]
    return np.column_stack(cols)


def knn_gradient(
    X: np.ndarray, y: np.ndarray, *, n_neighbors: int | None = None, rows: np.ndarray | None = None
) -> np.ndarray:
    """Estimate the gradient of samples ``y = g(X)`` by local linear fits on nearest neighbours.

    Neighbours are found in standardised input space (each column divided by its standard
    deviation) and the local affine model is fitted there, so the returned gradient is
    ``dg/dz = dg/dx * std(x)``, shape (len(rows), variable). ``n_neighbors`` defaults to
    ``max(20, 4 * (variable + 1))``. A tiny ridge keeps degenerate neighbourhoods finite.
    """
    from sklearn.neighbors import NearestNeighbors

    n, v = X.shape
    rows = np.arange(n) if rows is None else rows
    k = min(n, n_neighbors or max(20, 4 * (v + 1)))
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    idx = NearestNeighbors(n_neighbors=k).fit(Z).kneighbors(Z[rows], return_distance=False)
    D = Z[idx] - Z[rows][:, None, :]  # (m, k, v)
    A = np.concatenate([np.ones((*D.shape[:2], 1)), D], axis=2)
    AtA = np.einsum("mki,mkj->mij", A, A) + 1e-8 * np.eye(v + 1)
    Aty = np.einsum("mki,mk->mi", A, y[idx])
    return np.linalg.solve(AtA, Aty[..., None])[:, 1:, 0]


def gradient_agreement(
    expr: sympy.Expr,
    X: object,
    names: Sequence[str],
    *,
    y: object | None = None,
    y_grad: object | None = None,
    n_neighbors: int | None = None,
    max_points: int = 1000,
    seed: int = 0,
) -> float:
    """Mean ``|cos|`` between the formula's input gradient and the component's gradient.

    For quantities known only up to a monotone map (Wetzel et al.), ``h(g(x))`` has the
    gradient direction of ``g`` wherever ``h' != 0``, so gradient directions are compared
    instead of values. The component is known only at samples: pass its gradient ``y_grad``
    (sample, variable) in ``X``'s coordinates when you have it (e.g. by autograd through the
    network), otherwise pass its values ``y`` and the gradient is estimated by local linear
    fits on nearest neighbours (:func:`knn_gradient`; noisy near sharp features and where
    samples are sparse, so a perfect formula typically scores 0.97-1.0 rather than 1).

    Both gradients are compared in standardised coordinates (each derivative multiplied by its
    input's standard deviation) so that the score does not depend on the inputs' units.
    Samples where either gradient vanishes or is non-finite are skipped; when none remain the
    agreement is 0 (a constant formula agrees with nothing) and a warning is logged.

    Parameters
    ----------
    expr : sympy.Expr
        Formula over the symbols of ``names``.
    X : array-like, shape (sample, variable)
        Inputs.
    names : sequence of str
        Column names of ``X``.
    y : array-like, shape (sample,), optional
        Component values at ``X``; used when ``y_grad`` is not given.
    y_grad : array-like, shape (sample, variable), optional
        Component gradient at ``X`` with respect to the inputs.
    n_neighbors : int, optional
        Neighbourhood size of the kNN estimate.
    max_points : int
        At most this many samples (drawn with ``seed``) are compared.
    seed : int
        Seed of that draw.

    Returns
    -------
    float
        In [0, 1]; 1 when the directions agree everywhere.
    """
    if (y is None) == (y_grad is None):
        raise ShapeError("gradient_agreement: pass exactly one of y (values) or y_grad")
    check_names(expr, names, "gradient_agreement")
    if y is not None:
        Xa, ya = validate_xy(X, y, names, "gradient_agreement")
    else:
        Xa = as_matrix(X, "gradient_agreement: X")
        check_width(Xa, names, "gradient_agreement")
        ya = None
    scale = Xa.std(axis=0)
    if np.any(scale == 0):
        raise ShapeError(
            f"gradient_agreement: constant input columns {list(np.flatnonzero(scale == 0))}"
        )
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(Xa), size=min(max_points, len(Xa)), replace=False))
    if ya is not None:
        g_ref = knn_gradient(Xa, ya, n_neighbors=n_neighbors, rows=rows)
    else:
        g_ref = as_matrix(y_grad, "gradient_agreement: y_grad")
        if g_ref.shape != Xa.shape:
            raise ShapeError(
                f"gradient_agreement: y_grad must have X's shape {Xa.shape}, got {g_ref.shape}"
            )
        g_ref = g_ref[rows] * scale
    g_f = formula_gradient(expr, Xa[rows], names) * scale
    return _mean_abs_cos(g_f, g_ref)


def _mean_abs_cos(a: np.ndarray, b: np.ndarray) -> float:
    """Mean ``|cos|`` of matching rows, skipping vanishing or non-finite rows."""
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    ok = np.isfinite(na) & np.isfinite(nb)
    ok &= (na > 1e-12 * np.max(na[ok], initial=0.0)) & (nb > 1e-12 * np.max(nb[ok], initial=0.0))
    if not ok.any():
        logger.warning("gradient_agreement: the formula's or the component's gradient vanishes")
        return 0.0
    cos = np.abs(np.sum(a[ok] * b[ok], axis=1)) / (na[ok] * nb[ok])
    return float(np.mean(np.minimum(cos, 1.0)))


def _sample_points(
    expr: sympy.Expr,
    truth: sympy.Expr,
    X: object | None,
    names: Sequence[str] | None,
    n_points: int,
    seed: int,
) -> tuple[np.ndarray, list[str]]:
    """Points for the numeric comparison: rows of ``X``, or uniform draws in [0.5, 2]."""
    rng = np.random.default_rng(seed)
    if X is not None:
        if names is None:
            raise ShapeError("exact_recovery: names are required with X")
        Xa = as_matrix(X, "exact_recovery: X")
        check_width(Xa, names, "exact_recovery")
        rows = rng.choice(len(Xa), size=min(n_points, len(Xa)), replace=False)
        return Xa[rows], list(names)
    syms = sorted({str(s) for s in expr.free_symbols | truth.free_symbols})
    return rng.uniform(0.5, 2.0, size=(n_points, len(syms))), syms


def _symbolically_affine(expr: sympy.Expr, truth: sympy.Expr) -> bool:
    """True when ``d expr / d s = c * d truth / d s`` with one constant ``c != 0`` for all s."""
    ratios = set()
    for s in expr.free_symbols | truth.free_symbols:
        dt, de = sympy.diff(truth, s), sympy.diff(expr, s)
        if dt == 0:
            if sympy.simplify(de) != 0:
                return False
            continue
        ratios.add(sympy.simplify(sympy.cancel(de / dt)))
    return len(ratios) == 1 and not next(iter(ratios)).free_symbols and next(iter(ratios)) != 0


def exact_recovery(
    expr: sympy.Expr,
    truth: sympy.Expr,
    *,
    X: object | None = None,
    names: Sequence[str] | None = None,
    rtol: float = EXACT_RTOL,
    n_points: int = 256,
    seed: int = 0,
    const_tol: float | None = CONST_TOL,
) -> bool:
    """Whether ``expr = a * truth + b`` for constants ``a != 0`` and ``b``.

    Consensus components are defined only up to scale and offset, so a formula recovers the
    truth exactly when the difference (``a = 1``), the ratio (``b = 0``) or, generally, the
    residual of an affine fit to the truth is constant. A monotone but non-affine relation
    (``exp(truth)``) is *not* exact recovery; :func:`gradient_agreement` measures that.

    The check is numeric first: on ``n_points`` samples (rows of ``X`` when given -- pass the
    data's domain so that singularities outside it do not matter -- else uniform draws in
    [0.5, 2] for every symbol), the root mean square residual of the affine fit must be at most
    ``rtol`` times the standard deviation of ``expr``. This lets float constants that sit near
    rationals pass. When both expressions are free of floats and small, a symbolic check
    (constant ratio of partial derivatives) must agree as well. Compare *unrounded* formulas.

    With ``const_tol``, a formula that fails this strict check is given its constants'
    precision: it still recovers the truth when moving each of its float constants by at most
    ``const_tol`` of its value (exponents included) passes the strict check. Constants fitted
    to a network's latent carry its precision (~1e-3 to 1e-2 relative), so a law with the right
    structure can miss the strict check by a coefficient off in the third digit; a formula of
    the wrong form (a polynomial standing in for ``1/r``, an extra term) cannot be moved onto
    the truth by small changes of its constants. Unlike rounding each constant to a few digits,
    the outcome does not depend on where a constant falls between two rounded values.
    ``const_tol=None`` is the strict check alone (pass ``rtol=STRICT_RTOL`` with it: fitted
    constants never reach :data:`EXACT_RTOL` unmoved).

    ``rtol`` defaults to :data:`EXACT_RTOL` (1e-6): with the constants free to move, a
    formula of the truth's form matches it to float precision, while a formula of another
    form that matches a smooth law on one range to 1e-3 does not reach 1e-6 (SRBench's
    symbolic rule, in numbers).

    Returns
    -------
    bool
        False also when either side is constant or non-finite on too many points.

    Examples
    --------
    >>> import sympy
    >>> x, y = sympy.symbols("x y")
    >>> exact_recovery(0.619 * x - 1.246 * x / y + 0.57, x / 2 - x / y)
    True
    >>> exact_recovery(0.619 * x - 1.246 * x / y + 0.57, x / 2 - x / y, const_tol=None,
    ...                rtol=STRICT_RTOL)
    False
    """
    pts, pnames = _sample_points(expr, truth, X, names, n_points, seed)
    check_names(expr, pnames, "exact_recovery (expression)")
    check_names(truth, pnames, "exact_recovery (truth)")
    e, t = evaluate(expr, pts, pnames), evaluate(truth, pts, pnames)
    if _affine_match(expr, truth, e, t, rtol):
        return True
    if const_tol is None or const_tol <= 0:
        return False
    return _affine_match_moving_constants(expr, e, t, pts, pnames, rtol, const_tol)


def _affine_match_moving_constants(
    expr: sympy.Expr,
    e0: np.ndarray,
    t: np.ndarray,
    pts: np.ndarray,
    pnames: list[str],
    rtol: float,
    const_tol: float,
) -> bool:
    """The strict numeric match after moving each Float of ``expr`` by at most ``const_tol``
    (``e0``, ``t``: ``expr`` and the truth evaluated at ``pts``).

    Bounded least squares over relative changes ``eps`` (one per distinct Float) of the
    residual of ``expr(eps)`` after projecting out ``[1, truth]``. Formulas whose residual is
    over :data:`MOVE_GATE` of their spread to begin with are not tried (no 2 % change of
    constants closes such a gap in a formula of the right form; this keeps the check cheap).
    """
    from scipy.optimize import least_squares

    floats = sorted(expr.atoms(sympy.Float), key=lambda f: float(f))
    if not floats:
        return False
    eps_names = [f"_const_eps_{i}" for i in range(len(floats))]
    moved = expr.xreplace(
        {f: f * (1 + sympy.Symbol(n)) for f, n in zip(floats, eps_names, strict=True)}
    )
    ok = np.isfinite(t) & np.isfinite(e0)
    if ok.sum() < max(8, len(pts) // 2) or np.std(t[ok]) == 0 or np.std(e0[ok]) == 0:
        return False
    basis = np.c_[np.ones(ok.sum()), t[ok]]
    q, _ = np.linalg.qr(basis)
    scale = float(np.std(e0[ok]))

    def residual(eps: np.ndarray) -> np.ndarray:
        cols = np.c_[pts[ok], np.broadcast_to(eps, (int(ok.sum()), len(eps)))]
        e = evaluate(moved, cols, pnames + eps_names)
        if not np.all(np.isfinite(e)):
            return np.full(len(e), 1e6)
        return (e - q @ (q.T @ e)) / scale

    start = residual(np.zeros(len(floats)))
    if np.sqrt(np.mean(start**2)) > MOVE_GATE:
        return False
    fit = least_squares(
        residual, np.zeros(len(floats)), bounds=(-const_tol, const_tol), method="trf"
    )
    cols = np.c_[pts, np.broadcast_to(fit.x, (len(pts), len(floats)))]
    final = evaluate(moved, cols, pnames + eps_names)
    return _affine_match_values(final, t, rtol)


def _affine_match(
    expr: sympy.Expr, truth: sympy.Expr, e: np.ndarray, t: np.ndarray, rtol: float
) -> bool:
    """The numeric (and, when cheap and float-free, symbolic) affine-match check on the values
    ``e``, ``t`` of ``expr`` and ``truth`` at the sample points."""
    numeric = _affine_match_values(e, t, rtol)
    exact_numbers = not (expr.atoms(sympy.Float) or truth.atoms(sympy.Float))
    if numeric and exact_numbers and complexity(expr) + complexity(truth) <= MAX_SYMBOLIC_NODES:
        return _symbolically_affine(expr, truth)
    return numeric


def _affine_match_values(e: np.ndarray, t: np.ndarray, rtol: float) -> bool:
    """``e ~ a * t + b`` (``a != 0``) with RMS residual at most ``rtol * std(e)``."""
    ok = np.isfinite(e) & np.isfinite(t)
    if ok.sum() < max(8, len(e) // 2) or np.std(t[ok]) == 0 or np.std(e[ok]) == 0:
        return False
    a, b = affine_fit(t[ok], e[ok])
    resid = float(np.sqrt(np.mean((e[ok] - a * t[ok] - b) ** 2)))
    return bool(a != 0.0 and resid <= rtol * float(np.std(e[ok])))


@dataclass(frozen=True)
class Support:
    """How many member networks a formula explains.

    Attributes
    ----------
    fraction : float
        Fraction of members with ``member_r2 >= threshold``.
    member_r2 : ndarray, shape (member,)
        R^2 of the per-member affine refit of the formula onto that member's component.
    threshold : float
        The R^2 a member needs to count.
    """

    fraction: float
    member_r2: np.ndarray
    threshold: float


def support(
    expr: sympy.Expr,
    member_components: object,
    X: object,
    names: Sequence[str],
    *,
    threshold: float = 0.9,
) -> Support:
    """Fraction of member networks whose own aligned component the formula explains.

    Each member's component is compared with ``a_k * f(X) + b_k`` after its own least-squares
    affine refit (members are aligned only up to scale, sign and offset).

    Parameters
    ----------
    expr : sympy.Expr
        Formula over the symbols of ``names``.
    member_components : array-like, shape (member, sample)
        Each member's aligned projection onto this component, on the samples of ``X``.
    X : array-like, shape (sample, variable)
        Inputs.
    names : sequence of str
        Column names of ``X``.
    threshold : float
        R^2 a member needs to count as explained.

    Returns
    -------
    Support
    """
    Xa = as_matrix(X, "support: X")
    M = as_matrix(member_components, "support: member_components", min_samples=1)
    if M.shape[1] != Xa.shape[0]:
        raise ShapeError(
            f"support: member_components must be (member, sample) with {Xa.shape[0]} samples "
            f"like X, got shape {M.shape}"
        )
    check_width(Xa, names, "support")
    check_names(expr, names, "support")
    f = evaluate(expr, Xa, names)
    member_r2 = np.array([_member_r2(f, m) for m in M])
    return Support(float(np.mean(member_r2 >= threshold)), member_r2, threshold)


def _member_r2(f: np.ndarray, m: np.ndarray) -> float:
    """Affine-refit R^2 of ``f`` onto one member; 0 for a constant member (nothing explained)."""
    if float(np.std(m)) == 0.0:
        return 0.0
    return affine_r2(f, m)
