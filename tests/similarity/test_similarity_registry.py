"""The registry table: names, parsing, errors, the generated docs, the CLI listing, and
pairwise over names and user callables (all pairs equal the single-pair values)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from ensemble_lens.cli import main
from ensemble_lens.errors import (
    DroppedUnitsWarning,
    EnsembleLensError,
    MeasureParameterError,
    ShapeError,
    UnknownMeasureError,
)
from ensemble_lens.similarity import measure, measure_names, pairwise
from ensemble_lens.similarity._registry import measures_markdown

ROOT = Path(__file__).resolve().parents[2]


def _nets(seed=0, n=60, widths=(5, 7, 6)):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4))
    return {
        f"m{k}": np.abs(np.tanh(z @ rng.normal(size=(4, d))) + 0.3 * rng.normal(size=(n, d)))
        for k, d in enumerate(widths)
    }


@pytest.mark.slow
def test_every_listed_name_round_trips_and_evaluates():
    x, y = _nets()["m0"], _nets()["m1"]
    names = [n for n, _ in measure_names()]
    assert len(names) == len(set(names)) > 140
    for name in names:
        m = measure(name)
        if (name[0].isalpha() and "-" in name) or name in ("gulp", "ensd", "bures_distance"):
            assert m.name == name, (name, m.name)
        assert np.isfinite(m(x, y)), name


def test_name_scheme_variants():
    a = measure("cka-kernel=(rbf-sigma=1.0)-hsic=gretton-score")
    b = measure("cka-kernel=rbf-sigma=1.0-hsic=gretton-score")
    c = measure("measure/thingsvision/cka-kernel=(rbf-sigma=1.0)-hsic=gretton-score")
    assert a.name == b.name == c.name == "cka-kernel=(rbf-sigma=1.0)-hsic=gretton-score"
    assert measure("cka").name == "cka-kernel=linear-hsic=gretton-score"
    assert measure("ridge-lambda=1e-3-r2").options["lam"] == pytest.approx(1e-3)
    assert measure("svcca-var=0.9-score").options["keep_variance"] == 0.9
    assert measure("svcca-dim=3-score").options["n_components"] == 3
    assert measure("procrustes-distance=angular").kind == "distance"
    assert not measure("cycle_knn-topk=5").symmetric and measure("mutual_knn-topk=5").symmetric
    x, y = _nets()["m0"], _nets()["m1"]
    assert measure("procrustes-distance=angular")(x, y) == pytest.approx(
        np.arccos(measure("procrustes-score")(x, y)), abs=1e-12
    )
    assert measure("nbs-score")(x, y) == pytest.approx(measure("procrustes-score")(x, y), abs=1e-14)


def test_unknown_names_list_the_closest():
    with pytest.raises(
        UnknownMeasureError,
        match=r"unknown measure 'ckaa-kernel=linear-hsic=lange-score'; "
        r"closest names: cka-kernel=linear-hsic=lange-score",
    ):
        measure("ckaa-kernel=linear-hsic=lange-score")
    with pytest.raises(MeasureParameterError, match="hsic must be one of"):
        measure("cka-hsic=langee")
    with pytest.raises(UnknownMeasureError, match="unknown part 'kernal=linear'"):
        measure("cka-kernal=linear")
    with pytest.raises(MeasureParameterError, match=r"sigma=.* is not a valid float"):
        measure("cka-kernel=rbf-sigma=wide")
    with pytest.raises(UnknownMeasureError, match=r"measure: expected a name \(str\), got int"):
        measure(3)
    # both are ValueErrors under the package's root, and not ShapeErrors (not about arrays)
    assert issubclass(UnknownMeasureError, ValueError) and issubclass(
        MeasureParameterError, EnsembleLensError
    )
    assert not issubclass(UnknownMeasureError, ShapeError)


def test_measures_doc_is_current():
    doc = (ROOT / "docs" / "MEASURES.md").read_text()
    assert doc == measures_markdown(), (
        "regenerate: ensemble-lens measures --markdown > docs/MEASURES.md"
    )


def test_cli_lists_measures(capsys):
    assert main(["measures", "--family", "rsa-rdm=correlation"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("rsa-rdm=correlation-compare=spearman ") for line in out)
    assert all(line.startswith("rsa-rdm=correlation") for line in out)


@pytest.mark.parametrize(
    "name",
    [
        "cka-kernel=rbf-hsic=song-score",
        "cka-kernel=linear-hsic=lange-distance=angular",
        "rsa-rdm=correlation-compare=spearman",
        "rsa-rdm=euclidean-compare=tau_a",
        "rsa-rdm=cosine-compare=bures_metric",
        "jaccard_similarity-k=5",
        "cycle_knn-topk=4",
        "ridge-lambda=1-pearsonr-cv=3folds",
        "pls-components=2-r2-cv=3folds",
        "svcca-var=0.95-distance=angular",
        "gulp",
        "procrustes-distance=euclidean",
    ],
)
def test_pairwise_by_name_equals_single_pairs(name):
    nets = _nets(1)
    nets["m1"][:, 2] = 1.0  # a dead unit: one aggregated warning per call
    m = measure(name)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        da = pairwise(nets, name, n_jobs=2)
    dropped = [r for r in rec if issubclass(r.category, DroppedUnitsWarning)]
    assert len(dropped) == (0 if m.keep_dead else 1)
    assert da.attrs["metric"] == m.name and da.attrs["kind"] == m.kind
    keys = list(nets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, a in enumerate(keys):
            for j, b in enumerate(keys):
                if i == j and m.kind == "distance":
                    assert da.values[i, j] == 0.0
                else:
                    assert da.values[i, j] == pytest.approx(m(nets[a], nets[b]), abs=1e-10)


def test_user_callable_asymmetric_and_progress():
    def lead(x, y):
        return float(np.mean(x) - 2 * np.mean(y))

    lead.symmetric = False
    seen = []
    nets = _nets(2)
    da = pairwise(nets, lead, progress=lambda done, total: seen.append((done, total)))
    keys = list(nets)
    for i, a in enumerate(keys):
        for j, b in enumerate(keys):
            assert da.values[i, j] == pytest.approx(lead(nets[a], nets[b]))
    assert seen and seen[-1] == (9, 9)
    sym = pairwise(nets, lambda x, y: float(np.mean(x) + np.mean(y)))
    np.testing.assert_allclose(sym.values, sym.values.T)


def test_blocks_bound_the_states():
    nets = _nets(3, n=40, widths=(3, 4, 5, 3, 4))
    full = pairwise(nets, "rsa-rdm=correlation-compare=spearman")
    tiny = pairwise(nets, "rsa-rdm=correlation-compare=spearman", max_bytes=40 * 40 * 8)
    np.testing.assert_allclose(tiny.values, full.values, atol=1e-14)
    asym = pairwise(nets, "cycle_knn-topk=3", max_bytes=1)
    ref = pairwise(nets, "cycle_knn-topk=3")
    np.testing.assert_array_equal(asym.values, ref.values)


def test_executor_paths_and_picklable_work():
    import pickle
    from concurrent.futures import ThreadPoolExecutor

    nets = _nets(4, n=50)
    names = ["cka-kernel=rbf-hsic=lange-score", "rsa-rdm=euclidean-compare=tau_b",
             "ridge-lambda=0.5-r2-cv=3folds", "cknna-topk=5", "rank_similarity-k=4",
             "hard_correlation_match"]  # fmt: skip
    with ThreadPoolExecutor(2) as ex:
        for name in names:
            m = measure(name)
            for part in (m.fn, m.prepare, m.combine, m.combine_many):
                if part is not None:
                    pickle.dumps(part)  # what an executor ships to a worker process
            a = pairwise(nets, name, executor=ex).values
            np.testing.assert_allclose(a, pairwise(nets, name).values, atol=1e-14)


@pytest.mark.slow
def test_pairwise_equals_single_pairs_for_every_listed_name():
    nets = _nets(5, n=36, widths=(4, 5, 3))
    keys = list(nets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, _ in measure_names():
            if name in ("rsa",) or "crossnobis" in name:
                continue
            if name == "gs":  # 1000 landmark draws per MRLT by default: 5 keep it quick
                name = "gs-n=5"
            m = measure(name)
            da = pairwise(nets, name)
            for i, a in enumerate(keys):
                for j, b in enumerate(keys):
                    if i == j and m.kind == "distance":
                        assert da.values[i, j] == 0.0, name
                    else:
                        want = m(nets[a], nets[b])
                        assert da.values[i, j] == pytest.approx(want, abs=1e-10), name


def test_moments_input_serves_every_moments_name():
    from ensemble_lens.similarity import compute_moments

    nets = _nets(6, n=80)
    mom = compute_moments(nets)
    for name, _ in measure_names():
        m = measure(name)
        if m.moment is None:
            continue
        got = pairwise(mom, name)
        assert got.attrs["method"] == "moments", name
        np.testing.assert_allclose(got.values, pairwise(nets, name).values, atol=1e-12)
    with pytest.raises(ShapeError, match="needs the activations"):
        pairwise(mom, "rsa-rdm=correlation-compare=spearman")
