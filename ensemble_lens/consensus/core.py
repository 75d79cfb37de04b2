"""Which aligned components an ensemble of networks shares: :func:`find_consensus`.

Procedure (``ARCHITECTURE.md``, "Consensus, precisely enough to test"):

1. Reduce every network to its top principal components (``variance_keep``), fit split only.
2. Align all networks at once on the fit split (``method``: MAXVAR multiset CCA or
   generalized Procrustes).
3. On the test split score every member ``k`` and component ``j`` by
   *agreement* ``a_kj = corr(s_kj, mean_{l≠k} s_lj)`` (leave one network out) and by
   *variance* ``v_kj``: the share of member ``k``'s total variance carried by its projection.
4. Null: ``n_null`` refits with the sample order permuted independently inside each network;
   the statistic of a refit is each member's largest agreement over components (family-wise
   over components); ``null_threshold`` is the ``1 - alpha`` quantile over refits and members.
   With ``untrained`` networks, a second null per component (``untrained.py``): a component
   the untrained networks carry (reproduce nearly as well as trained members, with no
   systematically shared remainder) is not learned and not consensus.
5. Decision rule: member ``k`` supports component ``j`` when ``a_kj > null_threshold`` AND
   ``v_kj >= min_variance``. Agreement alone would promote tiny systematic residuals that every
   network shares; variance alone keeps idiosyncratic high-variance directions. ``support_j``
   is the fraction of supporting members; component ``j`` is consensus when
   ``support_j >= p_support``.

Components are sorted by sharedness (mean agreement over members), largest first. The
consensus scores of a component are the aligned projections of the members that support it,
averaged with ``member_weights`` (default equal; the pipeline uses precision weights from each
member's held-out validation error, :func:`validation_weights`): which components are shared
is decided by every member alike (the untrained null, too, tests the equal-weight mean); how a
shared component is estimated leans on the better-trained members.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import xarray as xr

from .._arrays import sample_ids_of
from ..align._validate import as_matrices
from ..errors import ShapeError
from ..similarity._device import Device
from .null import Method, make_aligner, run_permutation_null
from .scoring import member_agreement, variance_carried
from .untrained import untrained_null

__all__ = ["find_consensus"]

logger = logging.getLogger(__name__)

_MIN_SPLIT = 3


def _split_masks(split: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean fit and test masks (n,) from a ``"fit"``/``"test"``/``"extrapolation"`` array
    or a boolean fit mask. Extrapolation samples are in neither: they take no part in the
    decision and get scores like every sample."""
    s = np.asarray(getattr(split, "values", split))
    if s.shape != (n,):
        raise ShapeError(f"split: expected shape ({n},) like the activations, got {s.shape}")
    if s.dtype == bool:
        fit, test = s, ~s
    else:
        labels = s.astype(str)
        bad = sorted({str(v) for v in np.unique(labels)} - {"fit", "test", "extrapolation"})
        if bad:
            raise ShapeError(
                f"split: expected only 'fit' and 'test' labels, got {bad} (samples labelled "
                "'extrapolation' are allowed too)"
            )
        fit, test = labels == "fit", labels == "test"
    n_fit, n_test = int(fit.sum()), int(test.sum())
    if min(n_fit, n_test) < _MIN_SPLIT:
        raise ShapeError(
            f"split: expected at least {_MIN_SPLIT} fit and {_MIN_SPLIT} test samples, "
            f"got {n_fit} fit and {n_test} test"
        )
    return fit, test


def _check_params(n_null: int, alpha: float, p_support: float) -> None:
    """Reject parameter values that make the decision rule meaningless."""
    if n_null < 1:
        raise ValueError(f"n_null: expected a positive number of refits, got {n_null}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha: expected a number in (0, 1), got {alpha}")
    if not 0.0 < p_support <= 1.0:
        raise ValueError(f"p_support: expected a number in (0, 1], got {p_support}")


@dataclass(frozen=True)
class _Options:
    """The parameters of one consensus run (recorded in the Dataset attrs)."""

    method: Method
    n_components: int | None
    variance_keep: float
    n_null: int
    alpha: float
    p_support: float
    min_variance: float
    seed: int


def _null_threshold(
    aligner: Any, rows: tuple[list[np.ndarray], list[np.ndarray]], opts: _Options, executor: Any
) -> float:
    """Family-wise ``1 - alpha`` quantile of the permutation null's largest agreements."""
    pf = [p.scores(x) for p, x in zip(aligner.pcas_, rows[0], strict=True)]
    pt = [p.scores(x) for p, x in zip(aligner.pcas_, rows[1], strict=True)]
    c = aligner.n_components_
    null = run_permutation_null(pf, pt, opts.method, c, opts.n_null, opts.seed, executor)
    return float(np.quantile(null, 1.0 - opts.alpha))


def find_consensus(
    activations: Sequence[Any] | Mapping[str, Any],
    *,
    split: Any,
    method: Method = "gcca",
    n_components: int | None = None,
    variance_keep: float = 0.99,
    n_null: int = 100,
    alpha: float = 0.05,
    p_support: float = 0.8,
    min_variance: float = 0.01,
    seed: int = 0,
    untrained: Sequence[Any] | Mapping[str, Any] | None = None,
    max_untrained_r2: float = 0.9,
    min_learned_share: float = 0.02,
    member_weights: Sequence[float] | Mapping[str, float] | None = None,
    executor: Any = None,
    device: Device = "cpu",
) -> xr.Dataset:
    """Find the aligned components that an ensemble of networks shares beyond chance.

    Parameters
    ----------
    activations : sequence or dict of array-like, each (sample, unit_k)
        One activation matrix per network, all on the same probe samples (dict keys name the
        models; otherwise ``model{k}``).
    split : array-like (sample,)
        ``"fit"``/``"test"`` labels, or a boolean mask that is True on fit samples. Samples
        labelled ``"extrapolation"`` take no part in the alignment, the scores or the nulls,
        and get components and member scores like every sample (for judging formulas beyond
        the fitted range; ``components`` are standardised on the fit and test samples).
    method : {"gcca", "procrustes"}
        Aligner: MAXVAR multiset CCA or generalized Procrustes.
    n_components : int, optional
        Aligned components to test; default the smallest per-network PCA rank.
    variance_keep : float in (0, 1]
        Share of each network's variance kept by its PCA truncation.
    n_null : int
        Permutation-null refits.
    alpha : float
        Family-wise error rate of the null threshold.
    p_support : float in (0, 1]
        Fraction of members that must support a consensus component.
    min_variance : float
        Least share of a member's variance a supported component must carry.
    seed : int
        Seed of the permutation null.
    untrained : sequence or dict of array-like, optional
        Untrained networks (same architecture) on the same samples (all of them, or only the
        fit and test samples): a second null, per
        component (``consensus/untrained.py``). Untrained networks share whatever their inputs
        and architecture give them (graph networks agree at ~0.999 on input-linear
        directions), so agreement is the wrong statistic. A component is *learned* when the
        untrained networks reproduce it (ridge R^2, test split: ``untrained_r2``) under
        ``max_untrained_r2`` times what trained members reproduce (``trained_r2``), or when
        the part they miss carries at least ``min_learned_share`` of its variance and is
        shared by the trained members (``learned_agreement``) more than any untrained
        component's missed part is shared by the untrained networks
        (``untrained_threshold``). A component that is not learned is not consensus.
    max_untrained_r2, min_learned_share : float
        See ``untrained``.
    member_weights : sequence or dict of float, optional
        Non-negative weight of each member (dict: by model name) in the consensus scores
        ``components``: each component is the weighted mean of the aligned projections of the
        members that support it (of all members when none does). Normalised to sum 1 and
        stored as ``member_weight``; ``n_effective_members`` (attr) is ``1 / sum(w^2)``.
        Default: equal weights. Agreement, variance, support and the nulls do not use them.
    executor : object with ``submit``, optional
        Runs the null refits in up to 8 batches.
    device : {"cpu", "cuda", "auto", "torch-cpu"}
        Where the alignment's shared moments pass (all members side by side on the fit
        samples) runs, as in :func:`ensemble_lens.similarity.compute_moments`; the null
        refits (on the members' few PCA scores) and the untrained null's alignment stay on
        numpy.

    Returns
    -------
    xarray.Dataset
        As in docs/CONTRACTS.md "Consensus results": ``components`` (sample, component),
        ``member_scores`` (model, sample, component), ``sharedness``, ``variance``,
        ``null_threshold``, ``support``, ``is_consensus`` (component,), ``member_support``
        (model, component); attrs record every parameter and ``n_components_kept`` (number
        of consensus components).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(600, 2))  # two latents every network carries
    >>> nets = [np.c_[z, rng.normal(size=(600, 4))] @ rng.permutation(np.eye(6)) for _ in range(4)]
    >>> split = np.where(np.arange(600) < 400, "fit", "test")
    >>> ds = find_consensus(nets, split=split, n_null=20)
    >>> ds["is_consensus"].values
    array([ True,  True, False, False, False, False])
    """
    names, arrays = as_matrices(activations)
    fit, test = _split_masks(split, arrays[0].shape[0])
    _check_params(n_null, alpha, p_support)
    weights = _member_weights(member_weights, names)
    if not 0.0 < max_untrained_r2 <= 1.0:
        raise ValueError(f"max_untrained_r2: expected a number in (0, 1], got {max_untrained_r2}")
    if not 0.0 <= min_learned_share < 1.0:
        raise ValueError(f"min_learned_share: expected a number in [0, 1), got {min_learned_share}")
    opts = _Options(
        method, n_components, variance_keep, n_null, alpha, p_support, min_variance, seed
    )
    rows = ([x[fit] for x in arrays], [x[test] for x in arrays])
    aligner = make_aligner(method, n_components, variance_keep, device)
    aligner.fit(dict(zip(names, rows[0], strict=True)))
    scores = aligner.transform(dict(zip(names, arrays, strict=True)))
    agree = member_agreement([s[test] for s in scores])
    var = variance_carried(rows[1], aligner.W_)
    threshold = _null_threshold(aligner, rows, opts, executor)
    null_method = "permutation"
    support = (agree > threshold) & (var >= min_variance)
    order = np.argsort(-agree.mean(axis=0), kind="stable")
    ds = _dataset(
        names,
        sample_ids_of(_first(activations)),
        [s[:, order] for s in scores],
        (agree[:, order], var[:, order], support[:, order]),
        threshold,
        p_support,
        weights,
        fit | test,
    )
    if untrained is not None:
        _untrained_test(
            ds, arrays, untrained, (fit, test), opts, (max_untrained_r2, min_learned_share)
        )
        null_method += "+untrained"
    ds.attrs.update(_attrs(opts, ds, aligner, null_method, (fit, test)))
    logger.info(
        "consensus: %d of %d components (%s null, threshold %.3f)",
        ds.attrs["n_components_kept"],
        len(order),
        null_method,
        threshold,
    )
    return ds


def _attrs(
    opts: _Options,
    ds: xr.Dataset,
    aligner: Any,
    null_method: str,
    masks: tuple[np.ndarray, np.ndarray],
) -> dict[str, Any]:
    """Dataset attrs: every parameter, the null method and the decision rule."""
    return {
        **asdict(opts),
        "n_components": "auto" if opts.n_components is None else opts.n_components,
        "n_components_kept": int(ds["is_consensus"].sum()),
        "member_weighting": "equal" if np.ptp(ds["member_weight"].values) == 0 else "weighted",
        "n_effective_members": float(1.0 / np.sum(ds["member_weight"].values ** 2)),
        "n_components_aligned": int(ds.sizes["component"]),
        "pca_components_per_model": list(aligner.n_components_per_model_),
        "null_method": null_method,
        "n_fit": int(masks[0].sum()),
        "n_test": int(masks[1].sum()),
        "n_extrapolation": int((~masks[0] & ~masks[1]).sum()),
        "rule": "member supports j: agreement > null_threshold and variance >= min_variance; "
        "consensus: support >= p_support (and, with untrained networks, is_learned: "
        "untrained_r2 < max_untrained_r2 * trained_r2, or learned_share >= min_learned_share "
        "and learned_agreement > untrained_threshold)",
    }


def _untrained_test(
    ds: xr.Dataset,
    members: list[np.ndarray],
    untrained: Sequence[Any] | Mapping[str, Any],
    masks: tuple[np.ndarray, np.ndarray],
    opts: _Options,
    limits: tuple[float, float],
) -> None:
    """Add the untrained null's per-component results (``consensus/untrained.py``) and drop
    the components it finds not learned. ``limits``: (max_untrained_r2, min_learned_share);
    ``masks``: fit and test (extrapolation samples, in neither, are left out)."""
    _, arrays = as_matrices(untrained)
    fit, test = masks
    keep = fit | test
    if arrays[0].shape[0] == fit.size:
        arrays = [u[keep] for u in arrays]
    elif arrays[0].shape[0] != keep.sum():
        raise ShapeError(
            f"untrained: expected {fit.size} samples like the activations (or {keep.sum()}, "
            f"their fit and test samples), got {arrays[0].shape[0]}"
        )
    scores = ds["member_scores"].values[:, keep]
    res = untrained_null(
        [m[keep] for m in members],
        scores,
        # the equal-weight mean: which components are learned must not depend on the weights
        _standardised(scores.mean(axis=0)),
        arrays,
        fit[keep],
        method=opts.method,
        variance_keep=opts.variance_keep,
        max_share=limits[0],
        min_learned_share=limits[1],
        permutation_threshold=float(ds["null_threshold"].values[0]),
    )
    for name in ("trained_r2", "untrained_r2", "learned_share", "learned_agreement"):
        ds[name] = ("component", getattr(res, name))
    ds["is_learned"] = ("component", res.learned)
    ds["is_consensus"] = ds["is_consensus"] & ds["is_learned"]
    ds.attrs.update(
        max_untrained_r2=limits[0],
        min_learned_share=limits[1],
        untrained_threshold=res.threshold,
        n_untrained=len(arrays),
    )


def _member_weights(
    member_weights: Sequence[float] | Mapping[str, float] | None, names: list[str]
) -> np.ndarray:
    """Normalised member weights (model,), in the order of ``names``."""
    if member_weights is None:
        return np.full(len(names), 1.0 / len(names))
    if isinstance(member_weights, Mapping):
        given = {str(k): v for k, v in member_weights.items()}
        unknown = sorted(set(given) - set(names))
        missing = [n for n in names if n not in given]
        if unknown or missing:
            raise ValueError(
                f"member_weights: expected one weight per model {names}; "
                f"missing {missing}, unknown {unknown}"
            )
        w = np.array([_weight_of(n, given[n]) for n in names])
    else:
        w = np.asarray(member_weights)
        if w.shape != (len(names),):
            raise ShapeError(
                f"member_weights: expected {len(names)} weights (one per model), got shape "
                f"{w.shape}"
            )
        w = np.array([_weight_of(n, v) for n, v in zip(names, w, strict=True)])
    for name, v in zip(names, w, strict=True):
        if not (np.isfinite(v) and v >= 0):
            raise ValueError(
                f"member_weights: model {name!r}: expected a finite weight >= 0, got {v}"
            )
    if w.sum() <= 0:
        raise ValueError("member_weights: expected at least one positive weight, got all zero")
    return w / w.sum()


def _weight_of(name: str, value: Any) -> float:
    """One member weight as a float, or an error naming the model."""
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"member_weights: model {name!r}: expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"member_weights: model {name!r}: expected a number, got {value!r}"
        ) from None


def _standardised(y: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Columns centred and scaled to unit variance on ``rows`` (default all; the other rows,
    extrapolation samples, are mapped the same way); constant columns only centred."""
    ref = y if rows is None else y[rows]
    sd = ref.std(axis=0)
    return (y - ref.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def _component_weights(weights: np.ndarray, member_support: np.ndarray) -> np.ndarray:
    """Weights (model, component) of the consensus scores: each component averages the members
    that support it, by their member weights (all members when none supports it)."""
    w = weights[:, None] * member_support
    total = w.sum(axis=0)
    w = np.where(total > 0, w / np.where(total > 0, total, 1.0), weights[:, None])
    return w


def _first(activations: Sequence[Any] | Mapping[str, Any]) -> Any:
    """The first network's raw input (for its sample ids)."""
    return next(iter(activations.values())) if isinstance(activations, Mapping) else activations[0]


def _dataset(
    names: list[str],
    sample_ids: np.ndarray | None,
    scores: list[np.ndarray],
    per_member: tuple[np.ndarray, np.ndarray, np.ndarray],
    threshold: float,
    p_support: float,
    weights: np.ndarray,
    rows: np.ndarray,
) -> xr.Dataset:
    """Assemble the "Consensus results" Dataset from sorted per-member arrays.

    ``per_member`` holds agreement, variance and support, each (model, component);
    ``weights`` (model,) the normalised member weights of the consensus scores; ``rows``
    (sample,) the fit and test samples the components are standardised on.
    """
    agree, var, member_support = per_member
    member = np.stack(scores)  # (model, sample, component)
    comp = _standardised(
        np.einsum("kc,ksc->sc", _component_weights(weights, member_support), member), rows
    )
    n, c = comp.shape
    support = member_support.mean(axis=0)
    coords = {
        "sample": sample_ids if sample_ids is not None else np.arange(n),
        "component": np.arange(c),
        "model": names,
    }
    return xr.Dataset(
        {
            "components": (("sample", "component"), comp),
            "member_scores": (("model", "sample", "component"), member),
            "sharedness": (("component",), agree.mean(axis=0)),
            "variance": (("component",), var.mean(axis=0)),
            "null_threshold": (("component",), np.full(c, threshold)),
            "member_support": (("model", "component"), member_support),
            "member_weight": (("model",), weights),
            "support": (("component",), support),
            "is_consensus": (("component",), support >= p_support - 1e-12),
        },
        coords=coords,
    )
