"""ensemble_lens: what did all these networks learn, and what is the law behind it?

Train or ingest an ensemble of networks, record their latents on one shared probe set into a
Zarr study store, compare them with the standard representation-similarity measures, align
them into one frame, find the components they share beyond a null, and distill those into
formulas checked against every member.

Importing this package is light: torch, dask and pysr load only when a function needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (loaded on first access)
_LAZY = {
    "open_store": "ensemble_lens.record.store",
    "StudyStore": "ensemble_lens.record.store",
    "record_activations": "ensemble_lens.record.recorder",
    "ingest_activations": "ensemble_lens.record.ingest",
    "load_model": "ensemble_lens.record.ingest",
    "read_probe_file": "ensemble_lens.record.probe_file",
    "run_study": "ensemble_lens.pipeline.runner",
    "load_config": "ensemble_lens.config",
    "StudyConfig": "ensemble_lens.config",
    "linear_cka": "ensemble_lens.similarity",
    "rbf_cka": "ensemble_lens.similarity",
    "cca": "ensemble_lens.similarity",
    "mean_cca": "ensemble_lens.similarity",
    "svcca": "ensemble_lens.similarity",
    "pwcca": "ensemble_lens.similarity",
    "procrustes_similarity": "ensemble_lens.similarity",
    "shape_distance": "ensemble_lens.similarity",
    "rsa": "ensemble_lens.similarity",
    "mutual_knn": "ensemble_lens.similarity",
    "linear_predictivity": "ensemble_lens.similarity",
    "pairwise": "ensemble_lens.similarity",
    "permutation_test": "ensemble_lens.similarity",
    "bootstrap_ci": "ensemble_lens.similarity",
    "pairwise_permutation_test": "ensemble_lens.similarity",
    "compute_moments": "ensemble_lens.similarity",
    "match_units": "ensemble_lens.similarity",
    "permutation_distance": "ensemble_lens.similarity",
    "measure": "ensemble_lens.similarity",
    "measure_names": "ensemble_lens.similarity",
    "layer_correspondence": "ensemble_lens.similarity",
    "plot_similarity": "ensemble_lens.similarity",
    "MultisetCCA": "ensemble_lens.align",
    "GeneralizedProcrustes": "ensemble_lens.align",
    "input_basis_map": "ensemble_lens.align",
    "find_consensus": "ensemble_lens.consensus",
    "distill_component": "ensemble_lens.distill",
    "build_report": "ensemble_lens.report",
    "make_executor": "ensemble_lens.execution",
    "get_task": "ensemble_lens.tasks",
    "Task": "ensemble_lens.tasks",
    "FormulaTask": "ensemble_lens.tasks",
}
# subpackages reachable as attributes (``el.tasks.FormulaTask``), imported on first access
_SUBPACKAGES = {"tasks", "similarity", "align", "consensus", "distill", "execution"}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"ensemble_lens.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ensemble_lens' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
