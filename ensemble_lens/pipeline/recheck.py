"""``inspect --verify --results``: do the stored results still describe the stored inputs?

Two checks per similarity layer: the result's tag is recomputed from the content digests of
the members it lists and the settings of the config that made it (a member rebuilt since
with other content makes it stale), and a sample of its entries is recomputed from the
stored activations, the same code path as the compare stage, and compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..config import stable_hash
from ..record.store import StudyStore

#: relative difference allowed between a stored and a recomputed similarity value
RTOL = 1e-6


@dataclass(frozen=True)
class Recheck:
    """One recomputed stored value, or one result found stale."""

    result: str  # e.g. "similarity/latent/linear_cka"
    where: str  # e.g. "('s0', 's1')", or "tag"
    stored: Any
    recomputed: Any
    agrees: bool

    def line(self) -> str:
        verdict = "agrees" if self.agrees else "DISAGREES"
        if self.where == "tag":
            return f"{self.result}: {verdict}: " + (
                "made from the members' stored content"
                if self.agrees
                else "made from other member content than the store holds now (stale); "
                f"rerun with --redo {self.result}"
            )
        return (
            f"{self.result} {self.where}: stored {self.stored:.9g}, recomputed from the stored "
            f"activations {self.recomputed:.9g}: {verdict}"
        )


def sample_pairs(k: int, n: int = 3) -> list[tuple[int, int]]:
    """Up to ``n`` distinct pairs i < j of ``k`` members, spread over the matrix."""
    candidates = [(0, 1), (0, k - 1), (k // 2, k - 1), (1, k - 1), (k // 2 - 1, k // 2)]
    out: list[tuple[int, int]] = []
    for i, j in candidates:
        if 0 <= i < j < k and (i, j) not in out:
            out.append((i, j))
    return out[:n]


def recheck_results(store: StudyStore, n_pairs: int = 3) -> list[Recheck]:
    """Recheck every similarity layer of ``store`` (see the module docstring)."""
    out: list[Recheck] = []
    for layer in store.result_layers("similarity"):
        ds = store.read_result("similarity", layer)
        ids = [str(m) for m in ds["model"].values]
        out += _recheck_tag(store, layer, ds, ids)
        values = {m: np.asarray(store.activations(m, layer).values) for m in ids}
        for var in [str(v) for v in ds.data_vars if not str(v).endswith("_pvalue")]:
            out += _recheck_metric(f"similarity/{layer}/{var}", ds[var], ids, values, n_pairs)
    return out


def _recheck_tag(store: StudyStore, layer: str, ds: Any, ids: list[str]) -> list[Recheck]:
    config = _config_that_made(store, ds.attrs.get("config_sha256"))
    if config is None or any(store.layer_digest(m, layer) is None for m in ids):
        return []  # made before digests and config hashes were kept
    settings = {k: v for k, v in config["similarity"].items() if k != "block_memory"}
    members = {m: store.layer_digest(m, layer) for m in ids}
    tag = stable_hash({"members": members, "similarity": settings})
    stored = ds.attrs.get("tag")
    return [Recheck(f"similarity/{layer}", "tag", stored, tag, stored == tag)]


def _config_that_made(store: StudyStore, sha: str | None) -> dict[str, Any] | None:
    for entry in store.study_attrs().get("configs") or []:
        if entry.get("sha256") == sha:
            return dict(entry.get("config") or {})
    return None


def _recheck_metric(
    name: str, da: Any, ids: list[str], values: dict[str, np.ndarray], n_pairs: int
) -> list[Recheck]:
    from ..similarity.blocks import pairwise_block
    from .compare import metric_specs

    [(_var, metric, options)] = metric_specs(SimpleNamespace(metrics=[name.rsplit("/", 1)[1]]))
    out = []
    for i, j in sample_pairs(len(ids), n_pairs):
        a, b = ids[i], ids[j]
        fwd, _bwd, _method = pairwise_block({a: values[a]}, {b: values[b]}, metric, **options)
        stored, again = float(da.values[i, j]), float(fwd[0, 0])
        agrees = bool(np.isclose(stored, again, rtol=RTOL, atol=RTOL))
        out.append(Recheck(name, f"({a!r}, {b!r})", stored, again, agrees))
    return out
