"""Rows of the registry table for the neighbour-graph and shape-of-data families: the
k-nearest-neighbour measures (Huh et al. 2024, ReSi), IMD and the Geometry Score, whose
per-network work is the neighbour lists, the kNN graph's heat-trace descriptor or the mean
relative living times of holes."""

from __future__ import annotations

from functools import partial
from typing import Any

from ._builders import build_cknna, build_knn
from ._names import Built, Family, Output, Param
from .geometry_score import geometry_score, gs_combine, mean_rlt
from .imd import imd, imd_combine, imd_state
from .knn import (
    cycle_knn,
    edit_distance_knn,
    jaccard_knn,
    lcs_knn,
    mutual_knn,
    rank_knn,
    second_order_cosine,
    soc_combine,
    soc_state,
)

__all__ = ["ORTHO", "neighbour_families"]

ORTHO = ("orthogonal", "isotropic-scaling", "translation")
_K = (Param("topk", "k", "int", 10, aliases=("k",)),)
_KM = (*_K, Param("metric", "metric", "str"))
# platonic's mutual/cycle/LCS/edit-distance kNN (the registry's code) rank raw inner products;
# metric=cosine is the paper's normalised features
_KNN_DOT = (*_K, Param("metric", "metric", "str", "dot", ("dot", "cosine", "euclidean")))


def build_imd(o: dict[str, object], _out: str) -> Built:
    """IMD as ReSi runs the authors' code: traces x 1e6, 8000 probes (one seeded run)."""
    kw = {"m": 10, "niters": o.get("niters", 8000), "seed": o.get("seed", 0), "scale": 1e6}
    return Built(
        imd,
        {"k": o.get("k", 5), **kw},
        prepare=partial(imd_state, k=o.get("k", 5), **kw),
        combine=imd_combine,
        shares="spectrum",
    )


def build_gs(o: dict[str, object], _out: str) -> Built:
    """Geometry Score with the authors' defaults; per network its MRLT."""
    kw: dict[str, Any] = {k: o[k] for k in ("n_landmarks", "gamma", "i_max", "n", "seed") if k in o}
    return Built(
        geometry_score, kw, prepare=partial(mean_rlt, **kw), combine=gs_combine, shares="mrlt"
    )


def build_soc(o: dict[str, Any], _out: str) -> Built:
    """Second-order cosine; per network its unit-norm samples and cosine neighbours."""
    k, on = o["k"], o.get("on", "distance")
    return Built(
        second_order_cosine,
        {"k": k, "on": on},
        prepare=partial(soc_state, k=k),
        combine=partial(soc_combine, on=on),
        shares="neighbours",
    )


def neighbour_families() -> list[Family]:
    """The neighbour-graph rows, in the order docs/MEASURES.md lists them."""
    return [
        Family(
            "mutual_knn",
            "mean overlap of k-nearest-neighbour sets (default raw inner products as "
            "platonic's code; metric=cosine the paper's normalised features)",
            "neighbours",
            ORTHO[:2],
            build_knn(mutual_knn, "mutual"),
            _KNN_DOT,
            listed=("mutual_knn-topk=10",),
            paper="Huh et al. 2024",
        ),
        Family(
            "cknna",
            "CKA restricted to pairs that are mutual k-nearest neighbours",
            "neighbours",
            ORTHO[:2],
            build_cknna,
            _K,
            listed=("cknna-topk=10",),
            paper="Huh et al. 2024",
        ),
        Family(
            "cycle_knn",
            "share of samples recovered through a Y- then X-neighbour (default raw inner "
            "products as platonic's code; metric=cosine the paper's)",
            "neighbours",
            ORTHO[:2],
            build_knn(cycle_knn, "cycle"),
            _KNN_DOT,
            listed=("cycle_knn-topk=10",),
            paper="Huh et al. 2024",
        ),
        Family(
            "jaccard_similarity",
            "mean Jaccard index of k-nearest-neighbour sets",
            "neighbours",
            ORTHO[:2],
            build_knn(jaccard_knn, "jaccard"),
            _KM,
            listed=("jaccard_similarity",),
            paper="ReSi; Hryniowski & Wong 2020",
        ),
        Family(
            "rank_similarity",
            "rank agreement of shared nearest neighbours",
            "neighbours",
            ORTHO[:2],
            build_knn(rank_knn, "rank"),
            _KM,
            listed=("rank_similarity",),
            paper="Wang et al. 2020",
        ),
        Family(
            "second_order_cosine_similarity",
            "cosine of cosine distances (ReSi, default) or similarities (on_similarity, the "
            "paper) to the union of neighbours",
            "neighbours",
            ORTHO[:2],
            build_soc,
            _K,
            flags={"on_similarity": {"on": "similarity"}, "on_distance": {"on": "distance"}},
            listed=(
                "second_order_cosine_similarity",
                "second_order_cosine_similarity-on_similarity",
            ),
            paper="Hamilton et al. 2016",
        ),
        Family(
            "lcs_knn",
            "mean longest common subsequence of sorted neighbour lists (in [0, k])",
            "neighbours",
            ORTHO[:2],
            build_knn(lcs_knn, "lcs"),
            _KNN_DOT,
            listed=("lcs_knn-topk=10",),
            paper="Huh et al. 2024",
        ),
        Family(
            "edit_distance_knn",
            "1 - mean edit distance of sorted neighbour lists / k",
            "neighbours",
            ORTHO[:2],
            build_knn(edit_distance_knn, "edit"),
            _KNN_DOT,
            listed=("edit_distance_knn-topk=10",),
            paper="Huh et al. 2024",
        ),
        Family(
            "imd_score",
            "multi-scale intrinsic distance: heat traces of kNN graphs (seeded SLQ)",
            "neighbours",
            (*ORTHO, "sample-permutation"),
            build_imd,
            (
                Param("k", "k", "int", 5),
                Param("niters", "niters", "int", 8000),
                Param("seed", "seed", "int", 0),
            ),
            outputs={"score": Output("distance")},
            listed=("imd_score",),
            paper="Tsitsulin et al. 2020",
        ),
        Family(
            "gs",
            "Geometry Score: squared L2 between mean relative living times of holes (H1 of "
            "witness complexes on random landmarks; needs gudhi)",
            "topology",
            (*ORTHO, "sample-permutation"),
            build_gs,
            (
                Param("landmarks", "n_landmarks", "int", 64),
                Param("gamma", "gamma", "float"),
                Param("i_max", "i_max", "int", 100),
                Param("n", "n", "int", 1000),
                Param("seed", "seed", "int", 0),
            ),
            outputs={"score": Output("distance")},
            listed=("gs",),
            paper="Khrulkov & Oseledets 2018",
        ),
    ]
