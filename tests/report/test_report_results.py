"""results.json holds exactly what the store holds: every number compared against the store."""

from __future__ import annotations

import json

import numpy as np

from ensemble_lens.report import ReportPaths, collect_results


def _load(built: ReportPaths) -> dict:
    return json.loads(built.json.read_text(encoding="utf-8"))


def _same(json_values, store_values) -> None:
    """Exact equality; JSON null stands for a non-finite value in the store."""
    expected = np.asarray(store_values, dtype=np.float64)
    got = np.array(
        [[np.nan if v is None else v for v in row] for row in json_values]
        if expected.ndim == 2
        else [np.nan if v is None else v for v in json_values],
        dtype=np.float64,
    )
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)  # NaN == NaN here, otherwise bit-exact


def test_json_is_strict_and_equals_collect_results(built: ReportPaths, study) -> None:
    text = built.json.read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text
    assert _load(built) == json.loads(json.dumps(collect_results(study)))


def test_provenance_matches_the_store(built: ReportPaths, study) -> None:
    prov = _load(built)["provenance"]
    attrs = study.study_attrs()
    for key in (
        "task",
        "config",
        "config_sha256",
        "stage_timings",
        "package_versions",
        "schema_version",
        "package_version",
    ):
        assert prov[key] == attrs[key], key
    assert [m["id"] for m in prov["models"]] == study.models
    for entry in prov["models"]:
        assert entry["attrs"] == study.model_attrs(entry["id"])
        assert entry["status"] == "complete"


def test_similarity_matrices_match_the_store(built: ReportPaths, study) -> None:
    sim = _load(built)["similarity"]
    assert sorted(sim) == study.result_layers("similarity") == ["edge.1", "edge.2"]
    for layer, entry in sim.items():
        ds = study.read_result("similarity", layer)
        assert entry["models"] == [str(m) for m in ds["model"].values]
        metrics = [v for v in ds.data_vars if not str(v).endswith("_pvalue")]
        assert sorted(entry["metrics"]) == sorted(metrics)
        for name, metric in entry["metrics"].items():
            values = ds[name].values
            _same(metric["matrix"], values)
            off = values[~np.eye(len(values), dtype=bool)]
            assert metric["mean_off_diagonal"] == float(off.mean())
            assert metric["min_off_diagonal"] == float(off.min())
            assert sorted(metric["order"]) == list(range(len(values)))
    aux = sim["edge.1"]["auxiliary"]["linear_cka_pvalue"]
    assert aux["metric"] == "linear_cka"
    _same(aux["values"], study.read_result("similarity", "edge.1")["linear_cka_pvalue"].values)
    assert sim["edge.1"]["metrics"]["shape_distance"]["kind"] == "distance"
    assert sim["edge.1"]["metrics"]["linear_cka"]["kind"] == "similarity"


def test_clustering_groups_the_similar_pairs(built: ReportPaths) -> None:
    entry = _load(built)["similarity"]["edge.1"]
    for metric in entry["metrics"].values():
        ordered = [entry["models"][i] for i in metric["order"]]
        halves = {frozenset(ordered[:2]), frozenset(ordered[2:])}
        assert halves == {frozenset({"net-a", "net-b"}), frozenset({"net-c", "net-d"})}


def test_embedding_reproduces_shape_distances(built: ReportPaths, study) -> None:
    emb = _load(built)["similarity"]["edge.1"]["embedding"]
    assert emb["source"] == "shape_distance"
    ds = study.read_result("similarity", "edge.1")
    ids = [str(m) for m in ds["model"].values]
    xy = np.array([emb["coords"][m] for m in ids])
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    target = 0.5 * (ds["shape_distance"].values + ds["shape_distance"].values.T)
    # 2-D MDS of 4 points: close (not exact: the distances are not exactly 2-D Euclidean)
    assert np.abs(d - target).max() < 0.25 * target.max()
    assert 0.5 < emb["explained"] <= 1.0


def test_consensus_table_matches_the_store(built: ReportPaths, study) -> None:
    cons = _load(built)["consensus"]
    assert list(cons) == study.result_layers("consensus")
    ds = study.read_result("consensus", "edge.1")
    entry = cons["edge.1"]
    assert entry["components"] == ds["component"].values.tolist()
    for col in ("sharedness", "variance", "null_threshold", "support"):
        _same([row[col] for row in entry["table"]], ds[col].values)
    assert [row["is_consensus"] for row in entry["table"]] == ds["is_consensus"].values.tolist()
    assert entry["n_consensus"] == int(ds["is_consensus"].values.sum())
    ms = ds["member_support"].transpose("model", "component")
    assert entry["member_support"] == {
        str(m): ms.values[i].tolist() for i, m in enumerate(ms["model"].values)
    }
    assert entry["member_weights"] == dict(
        zip(ms["model"].values.tolist(), ds["member_weight"].values.tolist(), strict=True)
    )
    assert entry["attrs"]["p_support"] == ds.attrs["p_support"]
    assert entry["vector"]["mapped_var"] == "mapped_components"
    assert entry["vector"]["component_names"] == ["x", "y"]


def test_formulas_are_stored_dicts(built: ReportPaths, study) -> None:
    data = _load(built)
    assert data["formulas"] == study.read_formulas()
    assert data["formulas"][2]["expression"] is None
    checks = data["formula_checks"]
    assert checks[0]["disagreeing_members"] == ["net-d"]
    assert checks[1]["disagreeing_members"] == ["net-a"]
    assert checks[2]["disagreeing_members"] == []


def test_models_only_results_have_notes(models_only) -> None:
    res = collect_results(models_only)
    assert res["similarity"] == {} and res["consensus"] == {} and res["formulas"] == []
    assert "no similarity results in the store" in res["notes"]
    assert len(res["provenance"]["models"]) == 4
    json.dumps(res, allow_nan=False)
