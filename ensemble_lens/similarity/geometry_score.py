"""Geometry Score of Khrulkov & Oseledets (2018), "Geometry Score: A Method For Comparing
Generative Adversarial Networks" (ICML).

Each representation is a point cloud (its samples as points; widths may differ and no
sample-to-sample correspondence is used). Its topology at many scales is summarised by the
*relative living times* of one-dimensional holes (Algorithm 1 of the paper): ``L_0`` landmarks
are drawn at random among the samples, the relaxed witness complex of the landmarks with every
sample as a witness is built over the filtration ``alpha in [0, alpha_max]``,
``alpha_max = gamma * max d(witness, landmark)``, and its H1 persistence intervals (intervals
still alive are closed at ``alpha_max``) give ``beta_1(alpha)``, the number of holes alive at
``alpha``. ``RLT(i) = |{alpha in [0, alpha_max]: beta_1(alpha) = i}| / alpha_max`` for
``i < i_max`` (values of ``beta_1 >= i_max`` are not counted), and the mean over ``n`` draws of
landmarks is the MRLT. The score (Algorithm 2) is the squared L2 distance between two MRLTs,

    GS(X, Y) = sum_i (MRLT_X(i) - MRLT_Y(i))^2,

0 for identical clouds and larger for clouds with different numbers of holes at comparable
scales. Witness complexes and persistence come from GUDHI (``pip install
ensemble-lens[topology]``): GUDHI's ``WitnessComplex`` on a table of plain Euclidean
distances, as in the authors' code, where a simplex enters at the smallest ``alpha`` for which
one witness w has ``d(w, l) <= d(w, L) + alpha`` for each of its landmarks l (``d(w, L)``: w's
distance to its nearest landmark); simplices up to dimension 2, homology over Z/2.

Defaults follow the authors' code: ``L_0 = 64``, ``gamma = N / (128 * 5000)`` for N samples,
``i_max = 100``, ``n = 1000`` draws. Where we differ from it: landmarks are a random *subset*
(drawn without replacement, as the paper says; the code draws with replacement), and the draws
come from ``numpy.random.default_rng(seed)``, the same draws for every network of the same
size, so a score is reproducible and ``GS(X, X) = 0``. Invariant to orthogonal maps,
translation and isotropic scaling (``alpha_max`` scales with the cloud) and to reordering the
samples; widths may differ. The work is per network (its MRLT), so all pairs cost K MRLTs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial.distance import cdist

from ..errors import BackendUnavailableError, ShapeError
from ._input import prepare_pair, safe_scale

__all__ = ["geometry_score", "gs_combine", "mean_rlt", "relative_living_times"]


def _gudhi() -> Any:
    try:
        import gudhi
    except ImportError as err:
        raise BackendUnavailableError(
            "geometry score: needs the GUDHI library for witness complexes and persistence; "
            "install it with `pip install ensemble-lens[topology]` (or `pip install gudhi`)"
        ) from err
    return gudhi


def relative_living_times(intervals: np.ndarray, alpha_max: float, i_max: int) -> np.ndarray:
    """``(i_max,)`` RLT of H1 persistence intervals ``(m, 2)`` over ``[0, alpha_max]``.

    ``RLT(i)`` is the fraction of ``[0, alpha_max]`` where exactly ``i`` intervals ``[b, d)``
    are alive (deaths beyond ``alpha_max``, infinite ones included, are closed there).
    """
    iv = np.clip(np.asarray(intervals, dtype=float).reshape(-1, 2), 0.0, alpha_max)
    cuts = np.unique(np.concatenate([[0.0, alpha_max], iv.ravel()]))
    mids = 0.5 * (cuts[1:] + cuts[:-1])
    alive = ((iv[:, :1] <= mids) & (mids < iv[:, 1:])).sum(axis=0)
    keep = alive < i_max
    rlt = np.bincount(alive[keep], weights=np.diff(cuts)[keep], minlength=i_max)[:i_max]
    return rlt / alpha_max


def _one_draw(x: np.ndarray, idx: np.ndarray, gamma: float, i_max: int, gudhi: Any) -> np.ndarray:
    """RLT of one draw of landmarks ``x[idx]`` with every sample as a witness."""
    dist = cdist(x, x[idx])
    alpha_max = gamma * float(dist.max())
    if alpha_max <= 0:  # all samples coincide: no holes at any scale
        return np.eye(1, i_max)[0]
    order = np.argsort(dist, axis=1)
    table = np.dstack([order, np.take_along_axis(dist, order, axis=1)])  # GUDHI's landmark table
    tree = gudhi.WitnessComplex(nearest_landmark_table=table).create_simplex_tree(
        max_alpha_square=alpha_max, limit_dimension=2
    )  # the relaxation is in the table's units: plain distances here
    tree.compute_persistence(homology_coeff_field=2)
    return relative_living_times(tree.persistence_intervals_in_dimension(1), alpha_max, i_max)


def mean_rlt(
    X: Any,
    *,
    n_landmarks: int = 64,
    gamma: float | None = None,
    i_max: int = 100,
    n: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """``(i_max,)`` mean relative living times of one point cloud (rows of ``X``).

    Parameters as in :func:`geometry_score` (with fewer samples than ``n_landmarks`` every
    sample is a landmark). Raises :class:`ShapeError` for fewer than 3 samples or bad
    parameters, and :class:`~ensemble_lens.errors.BackendUnavailableError` without GUDHI.
    """
    gudhi = _gudhi()
    x = safe_scale(np.asarray(X, dtype=np.float64))
    if x.ndim != 2 or x.shape[0] < 3:
        raise ShapeError(
            f"geometry score: expected a (sample, unit) array with at least 3 samples, "
            f"got shape {x.shape}"
        )
    if n_landmarks < 3 or n < 1 or i_max < 1:
        raise ShapeError(
            "geometry score: expected n_landmarks >= 3, n >= 1 and i_max >= 1, got "
            f"{n_landmarks}, {n}, {i_max}"
        )
    g = x.shape[0] / (128 * 5000) if gamma is None else float(gamma)
    size = min(n_landmarks, x.shape[0])
    rng = np.random.default_rng(seed)
    total = np.zeros(i_max)
    for _ in range(n):
        total += _one_draw(x, rng.choice(x.shape[0], size, replace=False), g, i_max, gudhi)
    return total / n


def gs_combine(a: np.ndarray, b: np.ndarray) -> float:
    """Geometry Score from two MRLTs: ``sum (a - b)^2``."""
    return float(np.sum(np.square(a - b)))


def geometry_score(
    X: Any,
    Y: Any,
    *,
    n_landmarks: int = 64,
    gamma: float | None = None,
    i_max: int = 100,
    n: int = 1000,
    seed: int = 0,
) -> float:
    """Geometry Score ``sum_i (MRLT_X(i) - MRLT_Y(i))^2`` (module notes for the definition).

    Parameters
    ----------
    X, Y : array-like, shapes (n_samples, d1), (n_samples, d2)
        Two representations of the same samples (widths may differ).
    n_landmarks : int
        ``L_0``, landmarks per draw (64; every sample when there are fewer samples).
    gamma : float, optional
        ``alpha_max`` as a fraction of the largest witness-landmark distance; default
        ``n_samples / (128 * 5000)`` as the authors' code.
    i_max : int
        Numbers of holes counted, ``0 .. i_max - 1`` (100).
    n : int
        Draws of landmarks averaged (1000; the work is linear in ``n``).
    seed : int
        Seed of the draws (the same draws for both networks).

    Returns
    -------
    float
        A distance ``>= 0``; 0 when both clouds have the same MRLT.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    >>> ring = np.c_[np.cos(t), np.sin(t)]
    >>> blob = np.random.default_rng(0).normal(size=(400, 2))
    >>> geometry_score(ring, ring, n=20) == 0.0
    True
    >>> geometry_score(ring, blob, n=20, gamma=0.1) > 0.1
    True
    """
    x, y = prepare_pair(X, Y)
    kw: dict[str, Any] = {
        "n_landmarks": n_landmarks,
        "gamma": gamma,
        "i_max": i_max,
        "n": n,
        "seed": seed,
    }
    return gs_combine(mean_rlt(x, **kw), mean_rlt(y, **kw))
