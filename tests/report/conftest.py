"""A small but real study store for the report tests (written through the public store API)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from ensemble_lens.record.store import StudyStore, open_store

MODELS = ["net-a", "net-b", "net-c", "net-d"]
N = 120


#: a long, nested architecture: the members table shows all of it
LONG_ARCH = {
    "family": "graphnet",
    "width": 128,
    "depth": 3,
    "activation": "silu",
    "latent_dim": 16,
    "edge_mlp": {"hidden": [128, 128], "norm": "layer", "dropout": 0.05},
}


def make_members(path: Path, *, truth: bool = True, task: str = "gravity") -> StudyStore:
    """A store with the probe, four members and study attributes, no results."""
    rng = np.random.default_rng(0)
    store = open_store(path, "w")
    inputs = rng.uniform(0.5, 2.0, size=(N, 3)).astype(np.float32)
    force = inputs[:, 0] * inputs[:, 1] / inputs[:, 2] ** 2
    store.write_probe(inputs, names=["m1", "m2", "r"], truth={"force": force} if truth else None)
    for i, m in enumerate(MODELS):
        arch = LONG_ARCH if i == 3 else {"name": "graphnet", "hidden": 32, "layers": 2}
        attrs = {
            "seed": i,
            "architecture": arch,
            "task": task,
            "metrics": {"val_r2": 0.99 - 0.01 * i, "val_loss": 0.001 * (i + 1), "seconds": 3.5},
            "source": "trained" if i < 3 else "ingested",
        }
        store.write_activations(m, "edge.1", rng.normal(size=(N, 6)), attrs=attrs)
    store.write_study_attrs(
        config={"task": task, "ensemble": {"size": 4}, "seed": 0, "distill": {"seeds": [0]}},
        config_sha256="abc123def456",
        task=task,
        stage_timings={"train": 125.0, "record": 1.25, "similarity": 0.75, "report": 3.368e-06},
        package_versions={"numpy": np.__version__, "xarray": xr.__version__},
    )
    return store


def _similarity(seed: int) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    k = len(MODELS)
    block = np.array(
        [
            [1.0, 0.9, 0.3, 0.35],
            [0.9, 1.0, 0.32, 0.3],
            [0.3, 0.32, 1.0, 0.85],
            [0.35, 0.3, 0.85, 1.0],
        ]
    )
    jitter = rng.uniform(-0.02, 0.02, size=(k, k))
    cka = np.clip(block + 0.5 * (jitter + jitter.T), 0, 1)
    np.fill_diagonal(cka, 1.0)
    pvalue = np.where(cka > 0.5, 0.001, 0.2)
    np.fill_diagonal(pvalue, np.nan)
    dims, coords = ("model", "model_"), {"model": MODELS, "model_": MODELS}
    return xr.Dataset(
        {
            "linear_cka": (dims, cka),
            "linear_cka_pvalue": (dims, pvalue),
            "shape_distance": (dims, np.arccos(np.clip(cka, -1, 1))),
            "mean_cca": (dims, cka**0.5),
        },
        coords=coords,
    )


def _consensus(store: StudyStore) -> xr.Dataset:
    rng = np.random.default_rng(3)
    comps = np.arange(4)
    comp_scores = rng.normal(size=(N, 4))
    inputs = store.probe()["inputs"].values.astype(float)
    basis = np.column_stack([inputs[:, 0] - inputs[:, 1], inputs[:, 2] - 1.0])
    mapped = basis + 0.05 * rng.normal(size=basis.shape)
    support = np.array(
        [
            [True, True, False, False],
            [True, True, True, False],
            [True, False, False, False],
            [True, True, False, True],
        ]
    )
    return xr.Dataset(
        {
            "components": (("sample", "component"), comp_scores),
            "member_scores": (("model", "sample", "component"), rng.normal(size=(4, N, 4))),
            "sharedness": ("component", np.array([0.97, 0.81, 0.42, 0.2])),
            "variance": ("component", np.array([0.5, 0.25, 0.15, 0.1])),
            "null_threshold": ("component", np.array([0.35, 0.36, 0.45, 0.4])),
            "member_support": (("model", "component"), support),
            "member_weight": ("model", np.array([0.1, 0.2, 0.3, 0.4])),
            "support": ("component", support.mean(axis=0)),
            "is_consensus": ("component", np.array([True, True, False, False])),
            "input_basis": (("sample", "vector_component"), basis),
            "mapped_components": (("sample", "vector_component"), mapped),
        },
        coords={
            "model": MODELS,
            "component": comps,
            "vector_component": ["x", "y"],
            "sample": store.sample_ids,
        },
        attrs={
            "n_components_kept": 4,
            "p_support": 0.75,
            "null_method": "permutation",
            "member_weighting": "validation",
        },
    )


def _formulas(truth: bool = True) -> list[dict]:
    x = np.linspace(0.5, 2.0, 30)
    return [
        {
            "component": 0,
            "layer": "edge.1",
            "expression": "m1*m2/r**2",
            "srepr": "Mul(Symbol('m1'), Symbol('m2'), Pow(Symbol('r'), Integer(-2)))",
            "latex": r"\frac{m_{1} m_{2}}{r^{2}}",
            "complexity": 7,
            "r2_test": 0.9987,
            "r2_extrapolation": 0.9912,
            "gradient_agreement": 0.995,
            "support": 0.75,
            "member_r2": {"net-a": 0.99, "net-b": 0.97, "net-c": 0.96, "net-d": 0.42},
            "exact_recovery": True if truth else None,
            "truth_name": "force" if truth else None,
            "front": [
                {"expression": "m1", "complexity": 1, "loss": 0.5},
                {"expression": "m1*m2", "complexity": 3, "loss": 0.1},
                {"expression": "m1*m2/r**2", "complexity": 7, "loss": 0.001},
                {"expression": "m1*m2/r**2 + 0*r", "complexity": 8, "loss": 0.002},  # dominated
                {"expression": "m1*m2/r**2 + 0.001*r", "complexity": 11, "loss": 0.0009},
            ],
            "backend": "operon",
            "seed": 0,
            "seconds": 4.25,
            "pred_test": (x * 1.01).tolist(),
            "actual_test": x.tolist(),
            "pred_extrapolation": (x * 3 + 0.05).tolist(),
            "actual_extrapolation": (x * 3).tolist(),
        },
        {
            "component": 1,
            "layer": "edge.1",
            "expression": "sign(m1)*Abs(r)",
            "srepr": "Mul(sign(Symbol('m1')), Abs(Symbol('r')))",
            "latex": r"\left|{r}\right| \operatorname{sign}{\left(m_{1} \right)}",
            "complexity": 5,
            "r2_test": 0.71,
            "r2_extrapolation": 0.4,
            "gradient_agreement": 0.8,
            "support": 0.5,
            "member_r2": {"net-a": 0.8, "net-b": 0.95},
            "exact_recovery": None,
            "truth_name": None,
            "front": [{"expression": "sign(m1)*Abs(r)", "complexity": 5, "loss": 0.2}],
            "backend": "operon",
            "seed": 1,
            "seconds": 2.0,
            "reduced_modulo": ["0"],
            "modulo_expression": "0.5*m1**2",
            "unreduced_expression": "sign(m1)*Abs(r) + 0.5*m1**2",
        },
        {
            "component": 2,
            "layer": "edge.1",
            "expression": None,
            "srepr": None,
            "latex": None,
            "complexity": None,
            "r2_test": None,
            "r2_extrapolation": None,
            "gradient_agreement": None,
            "support": None,
            "member_r2": {},
            "exact_recovery": None,
            "truth_name": None,
            "front": [],
            "backend": "operon",
            "seed": 2,
            "seconds": 1.5,
        },
    ]


def make_study(path: Path, *, truth: bool = True, task: str = "gravity") -> StudyStore:
    """Models, two similarity layers, one consensus layer and three formulas (judged against
    the probe's truth ``force`` unless ``truth=False``)."""
    store = make_members(path, truth=truth, task=task)
    store.write_result("similarity", "edge.1", _similarity(1), tag="t")
    sim2 = _similarity(2)[["linear_cka"]]
    store.write_result("similarity", "edge.2", sim2, tag="t")
    store.write_result("consensus", "edge.1", _consensus(store), tag="t")
    store.write_formulas(_formulas(truth), tag="t")
    return store


@pytest.fixture(scope="session")
def study(tmp_path_factory: pytest.TempPathFactory) -> StudyStore:
    """A complete study store in its own directory."""
    return make_study(tmp_path_factory.mktemp("full") / "study.zarr")


@pytest.fixture()
def models_only(tmp_path: Path) -> StudyStore:
    """A store with models and study attributes but no results."""
    return make_members(tmp_path / "study.zarr")


@pytest.fixture(scope="session")
def no_truth_study(tmp_path_factory: pytest.TempPathFactory) -> StudyStore:
    """Members and formulas, with no truth in the probe and no verdict on any formula."""
    store = make_members(tmp_path_factory.mktemp("notruth") / "study.zarr", truth=False)
    store.write_formulas(_formulas(truth=False), tag="t")
    return store


@pytest.fixture(scope="session")
def built(study: StudyStore):
    """The report of ``study``, written to the default place (next to the store)."""
    from ensemble_lens.report import build_report

    return build_report(study)
