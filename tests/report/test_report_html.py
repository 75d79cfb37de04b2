"""The HTML page: self-contained, every figure inline, sections present, store text escaped."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ensemble_lens.record.store import open_store
from ensemble_lens.report import ReportPaths, build_report, report_dir

_URL_ATTRS = {"src", "href", "xlink:href", "data", "poster", "action", "srcset", "background"}
_EXTERNAL = re.compile(r"^\s*(https?:|//|ftp:|file:)", re.I)


class _Page(HTMLParser):
    """Collects tags, URL-bearing attributes, section ids, style text and visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.urls: list[tuple[str, str, str]] = []
        self.ids: list[str] = []
        self.style = ""
        self.text: list[str] = []
        self._in_style = False
        self.svg_labels: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in _URL_ATTRS and value is not None:
                self.urls.append((tag, name, value))
            if name == "id" and value:
                self.ids.append(value)
            if name == "style" and value:
                self.style += value
        if tag == "svg":
            self.svg_labels.append(dict(attrs).get("aria-label") or "")
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style += data
        else:
            self.text.append(data)


def _parse(path: Path) -> tuple[_Page, str]:
    source = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(source)
    page.close()
    return page, source


def test_default_location_is_beside_the_store_and_named_after_it(built: ReportPaths, study):
    folder = study.path.resolve().parent / "study.report"
    assert report_dir(study.path) == folder
    assert built.html == folder / "report.html" and built.json == folder / "results.json"
    assert built.html.is_file() and built.json.is_file()
    assert report_dir("runs/x/plain") == Path("runs/x/plain.report").resolve()


def test_two_stores_in_one_folder_keep_their_own_reports(tmp_path: Path) -> None:
    from conftest import make_members

    from ensemble_lens.cli import main

    make_members(tmp_path / "a.zarr", task="task-a")
    make_members(tmp_path / "b.zarr", task="task-b", truth=False)
    assert main(["report", str(tmp_path / "a.zarr")]) == 0  # the CLI writes where run does
    build_report(tmp_path / "b.zarr")
    for name, task in (("a", "task-a"), ("b", "task-b")):
        results = json.loads((tmp_path / f"{name}.report" / "results.json").read_text())
        assert results["store"] == f"{name}.zarr" and results["provenance"]["task"] == task
        assert task in (tmp_path / f"{name}.report" / "report.html").read_text()
    assert not (tmp_path / "report.html").exists() and not (tmp_path / "results.json").exists()


def test_page_has_every_section(built: ReportPaths) -> None:
    page, _ = _parse(built.html)
    for anchor in ("provenance", "similarity", "consensus", "formulas"):
        assert anchor in page.ids
    text = " ".join(page.text)
    for needle in (
        "Ensemble members",
        "Timings per stage",
        "Package versions",
        "net-a",
        "abc123def456",
        "Layer",
        "edge.2",
        "m1*m2/r**2",
        "averaged with these weights (validation): net-a 0.1, net-b 0.2",
        "Reduced modulo component 0: the component is this formula + 0.5*m1**2",
        "The search wrote sign(m1)*Abs(r) + 0.5*m1**2.",
    ):
        assert needle in text


def test_every_figure_is_inline_svg(built: ReportPaths) -> None:
    page, source = _parse(built.html)
    assert "img" not in page.tags and "object" not in page.tags and "iframe" not in page.tags
    # 4 heatmaps + 1 p-value map + 2 MDS maps (edge.1, edge.2: 3 + 1 heatmaps), 4 consensus
    # figures, 2 formula typesets, 2 Pareto fronts, 1 predicted-vs-actual
    assert page.tags.count("svg") == 4 + 1 + 2 + 4 + 2 + 2 + 1
    assert page.tags.count("figure") == page.tags.count("svg")
    assert all(label for label in page.svg_labels)
    # every id is unique across the whole page (figures share no glyph or clip ids)
    assert len(page.ids) == len(set(page.ids))
    assert "<?xml" not in source and "<!DOCTYPE svg" not in source


def test_no_external_url_is_loaded(built: ReportPaths) -> None:
    page, source = _parse(built.html)
    assert page.urls, "expected in-page references (glyph uses, nav anchors)"
    for tag, attr, value in page.urls:
        assert not _EXTERNAL.match(value), (tag, attr, value)
        assert value.startswith(("#", "data:")), (tag, attr, value)
    assert "@import" not in page.style
    assert not re.search(r"url\(\s*['\"]?(https?:|//)", source)
    assert "<script" not in source and "<link" not in source
    assert not re.search(r"https?://", source)


def test_no_formula_found_is_said_clearly(built: ReportPaths) -> None:
    page, _ = _parse(built.html)
    text = " ".join(page.text)
    assert "No formula found for this component." in text
    assert "1 of 4 members disagree" in text and "net-d" in text
    assert "exact recovery" in text and "not judged (no truth matched)" in text


@pytest.mark.slow
def test_report_is_deterministic(built: ReportPaths, study, tmp_path: Path) -> None:
    again = build_report(study.path, out_dir=tmp_path / "again")
    assert again.html.read_bytes() == built.html.read_bytes()
    assert again.json.read_bytes() == built.json.read_bytes()


def test_models_only_store_gives_a_valid_page_with_notes(models_only, tmp_path: Path) -> None:
    paths = build_report(models_only.path, out_dir=tmp_path / "out")
    page, _ = _parse(paths.html)
    text = " ".join(page.text)
    assert "No similarity results in the store" in text
    assert "No consensus results in the store" in text
    assert "No formulas in the store" in text
    assert "net-c" in text and "graphnet" in text
    assert "svg" not in page.tags
    for anchor in ("provenance", "similarity", "consensus", "formulas"):
        assert anchor in page.ids


def test_empty_store_page_says_there_are_no_models(tmp_path: Path) -> None:
    store = open_store(tmp_path / "empty.zarr", "w")
    paths = build_report(store)
    page, _ = _parse(paths.html)
    text = " ".join(page.text)
    assert "The store holds no models." in text
    assert "No stage timings recorded." in text
    assert "No configuration recorded in the store." in text


def test_text_from_the_store_is_escaped(models_only, tmp_path: Path) -> None:
    store = open_store(models_only.path, "a")
    store.write_study_attrs(task="<script>alert(1)</script>", package_versions={"<b>x": "1&2"})
    paths = build_report(store, out_dir=tmp_path)
    source = paths.html.read_text(encoding="utf-8")
    assert "<script>" not in source and "<b>x" not in source
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in source
    assert "1&amp;2" in source


def test_missing_store_raises_store_error(tmp_path: Path) -> None:
    from ensemble_lens.errors import StoreError

    with pytest.raises(StoreError, match="no study store at"):
        build_report(tmp_path / "nope.zarr")


def test_unusual_results_are_skipped_with_notes(models_only, tmp_path: Path) -> None:
    import numpy as np
    import xarray as xr

    store = open_store(models_only.path, "a")
    ids = store.models
    k, n = len(ids), store.n_samples
    dims = ("model", "model_")
    sim = xr.Dataset(
        {
            "rsa": (dims, np.eye(k)),
            "rsa_ci": (("model", "model_", "bound"), np.zeros((k, k, 2))),
            "rsa_null": (("model", "model_", "draw"), np.zeros((k, k, 5))),
        },
        coords={"model": ids, "model_": ids, "bound": ["low", "high"]},
    )
    store.write_result("similarity", "edge.1", sim, tag="t")
    cons = xr.Dataset(
        {
            "sharedness": ("component", [0.9]),
            "is_consensus": ("component", [True]),
            "input_basis": (("sample", "vector_component"), np.zeros((n, 2))),
            "mapped": (("sample", "axis"), np.zeros((n, 3))),
        },
        coords={"component": [0]},
    )
    store.write_result("consensus", "edge.1", cons, tag="t")
    store.write_formulas(
        [{"component": 0, "layer": "edge.1", "expression": "x", "latex": r"\begin{cases}x"}],
        tag="t",
    )
    page, _ = _parse(build_report(store, out_dir=tmp_path).html)
    text = " ".join(page.text)
    assert "rsa_ci [bound=low] (same order as rsa)" in text
    assert "rsa_ci [bound=high] (same order as rsa)" in text
    assert "rsa_null has dims ['model', 'model_', 'draw']" in text
    assert "No 2-D embedding" in text
    assert "mapped and input_basis have different shapes; not drawn." in text
    assert "Formula shown as text" in text
    assert "No Pareto front recorded." in text and "No per-member R² recorded." in text
    assert "1 of 1 components are consensus (null: not recorded in the consensus result)." in text


def test_untrained_null_numbers_are_shown_with_their_rule(models_only, tmp_path: Path) -> None:
    import numpy as np

    from ensemble_lens.consensus import find_consensus

    store = open_store(models_only.path, "a")
    n = store.n_samples
    rng = np.random.default_rng(5)
    x = rng.normal(size=(n, 1))
    f = x + 0.4 * (x**2 - 1)  # learned: untrained twins carry x only
    nets = {m: np.c_[f, rng.normal(size=(n, 3))] @ rng.normal(size=(4, 4)) for m in store.models}
    twins = [np.c_[x, rng.normal(size=(n, 3))] @ rng.normal(size=(4, 4)) for _ in range(3)]
    ds = find_consensus(nets, split=np.arange(n) < 80, n_null=5, untrained=twins)
    store.write_result("consensus", "edge.1", ds, tag="t")
    paths = build_report(store, out_dir=tmp_path)
    page, _ = _parse(paths.html)
    text = " ".join(page.text)
    assert "untrained R²" in text and "remainder agreement" in text
    assert "a component is learned when the twins reproduce under 0.9" in text
    assert "(null: permutation (5 refits) + 3 untrained twins)" in text
    row = json.loads(paths.json.read_text())["consensus"]["edge.1"]["table"][0]
    assert np.isclose(row["untrained_r2"], float(ds["untrained_r2"][0]))
    assert row["is_learned"] is True and row["is_consensus"] is True


def test_a_file_where_the_report_folder_goes_is_one_clear_error(models_only) -> None:
    from ensemble_lens.errors import StoreError

    blocker = report_dir(models_only.path)
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match=r"study\.report: expected a directory, found a file"):
        build_report(models_only.path)
    assert blocker.read_text() == "not a folder"


def test_extrapolation_reference_and_member_bootstrap_are_said(models_only, tmp_path: Path) -> None:
    store = open_store(models_only.path, "a")
    shown = {"component": 0, "layer": "h", "expression": "x", "r2_extrapolation": 0.98}
    store.write_formulas(
        [
            {
                **shown,
                "extrapolation_reference": "consensus of the networks on the extrapolation rows",
                "bootstrap_agreement": 0.5,
                "bootstrap_resamples": 4,
                "bootstrap_forms": 3,
                "flags": ["bootstrap"],
            },
            {
                **shown,
                "component": 1,
                "extrapolation_reference": None,
                "extrapolation_note": "extrapolation not checked: 2 of 2 members have none",
            },
        ],
        tag="t",
    )
    page, _ = _parse(build_report(store, out_dir=tmp_path).html)
    text = " ".join(page.text)
    assert "R² extrapolation: against the consensus of the networks on the extrapolation" in text
    assert "Member bootstrap: this form came back in 50% of 4 resamples" in text
    assert "it depends on which members are in the ensemble" in text
    assert "extrapolation not checked: 2 of 2 members have none" in text
