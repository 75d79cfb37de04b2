"""Figure functions and the numerics behind them (MDS, clustering, LaTeX clean-up, SVG)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ensemble_lens.report import figures
from ensemble_lens.report.formula_figures import (
    formula_svg,
    front_points,
    pareto_svg,
    pred_actual_svg,
    sanitize_latex,
)
from ensemble_lens.report.html import cell_decimals
from ensemble_lens.report.results import classical_mds, cluster_order, to_distance
from ensemble_lens.report.svg import inline_svg


def _pairwise(x: np.ndarray) -> np.ndarray:
    return np.linalg.norm(x[:, None] - x[None], axis=-1)


def test_classical_mds_recovers_planar_configuration() -> None:
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(7, 2))
    coords, eig = classical_mds(_pairwise(pts), 2)
    np.testing.assert_allclose(_pairwise(coords), _pairwise(pts), atol=1e-10)
    assert eig[0] >= eig[1] > 0
    np.testing.assert_allclose(eig[2:], 0.0, atol=1e-10)


def test_classical_mds_of_collinear_points_has_zero_second_axis() -> None:
    pts = np.array([[0.0], [1.0], [3.0], [7.0]])
    coords, _ = classical_mds(_pairwise(pts), 2)
    np.testing.assert_allclose(coords[:, 1], 0.0, atol=1e-12)
    np.testing.assert_allclose(np.abs(coords[:, 0] - coords[0, 0]), [0, 1, 3, 7], atol=1e-10)


def test_to_distance_symmetrises_and_fills_missing() -> None:
    sim = np.array([[1.0, 0.8, np.nan], [0.6, 1.0, 0.2], [0.1, 0.2, 1.0]])
    d = to_distance(sim, distance=False)
    np.testing.assert_allclose(d, d.T)
    np.testing.assert_allclose(np.diag(d), 0.0)
    assert d[0, 1] == pytest.approx(0.3)
    assert d[0, 2] == pytest.approx(0.9)  # NaN side replaced by the largest finite distance
    assert (d >= 0).all()


def test_cluster_order_puts_blocks_together() -> None:
    pts = np.array([0.0, 10.0, 0.1, 10.2, 0.2, 9.9])[:, None]
    order, z = cluster_order(_pairwise(pts))
    assert z is not None and z.shape == (5, 4)
    groups = [set(order[:3]), set(order[3:])]
    assert {0, 2, 4} in groups and {1, 3, 5} in groups


def test_cluster_order_of_one_network() -> None:
    assert cluster_order(np.zeros((1, 1))) == ([0], None)


def test_sanitize_latex_rewrites_unsupported_commands() -> None:
    out = sanitize_latex(r"$\left|{r}\right| \operatorname{sign}{\left(x \right)} \text{ m}$")
    assert out == r"|{r}| \mathrm{sign}{\left(x \right)} \mathrm{ m}"


def test_formula_svg_renders_and_falls_back() -> None:
    svg = formula_svg(r"\frac{m_{1} m_{2}}{r^{2}}")
    assert svg is not None and "<svg" in svg and "<path" in svg
    assert formula_svg(r"\begin{cases} x & \text{for}\: x > 0 \end{cases}") is None
    assert formula_svg(None) is None and formula_svg("") is None


def test_inline_svg_prefixes_ids_and_drops_urls() -> None:
    svg = figures.embedding_svg(np.array([[0.0, 0.0], [1.0, 0.5]]), ["a", "b"], "t", "d")
    assert "http" in svg  # matplotlib writes namespace and metadata URLs ...
    out = inline_svg(svg, "f7", 'a "quoted" <label>')
    assert "http" not in out  # ... which the inline version no longer carries
    assert out.startswith('<svg role="img" aria-label="a &quot;quoted&quot; &lt;label&gt;"')
    ids = re.findall(r'\bid="([^"]+)"', out)
    assert ids and all(i.startswith("f7-") for i in ids)
    refs = re.findall(r'href="#([^"]+)"', out) + re.findall(r"url\(#([^)]+)\)", out)
    assert refs and set(refs) <= set(ids)


def test_pareto_and_prediction_plots_skip_when_data_absent() -> None:
    assert pareto_svg([], "x", 1) is None
    assert pareto_svg([{"expression": "x", "complexity": None, "loss": 1.0}], "x", 1) is None
    assert pred_actual_svg({"pred_test": [1.0, 2.0]}) is None  # no actual values
    assert pred_actual_svg({"pred_test": [1.0], "actual_test": [1.0, 2.0]}) is None
    assert pred_actual_svg({"pred_test": [1.0, 2.0], "actual_test": [1.1, 2.1]}) is not None
    front = [
        {"expression": "x", "complexity": 1, "loss": 0.0},
        {"expression": "x+1", "complexity": 3, "loss": 0.5},
    ]
    assert "<svg" in (pareto_svg(front, "x+1", 3) or "")


def test_heatmap_annotates_small_matrices_only() -> None:
    # matplotlib writes each drawn string as an SVG comment next to its glyph paths
    m = np.array([[1.0, 0.25], [0.25, 1.0]])
    svg = figures.heatmap_svg(m, ["a", "b"], [1, 0], "title")
    assert svg.count("<!-- 0.25 -->") == 2 and svg.count("<!-- 1.00 -->") == 2
    big = np.full((13, 13), 0.25)
    svg = figures.heatmap_svg(big, [f"m{i}" for i in range(13)], list(range(13)), "big")
    assert "<!-- 0.25 -->" not in svg and "<!-- m12 -->" in svg
    assert "<!--" not in inline_svg(svg, "f1", "big")


def test_consensus_figures_draw() -> None:
    comps = ["0", "1", "2"]
    svg = figures.sharedness_svg(
        comps,
        np.array([0.9, 0.5, 0.1]),
        np.array([0.5, 0.3, 0.2]),
        np.array([0.3, 0.3, 0.3]),
        np.array([True, True, False]),
    )
    assert "<svg" in svg
    assert "<svg" in figures.support_svg(
        comps, np.array([1.0, 0.5, 0.0]), np.array([True, False, False]), None
    )
    grid = np.array([[True, False, True], [False, False, True]])
    assert "<svg" in figures.member_support_svg(grid, ["a", "b"], comps)


def test_pareto_highlights_the_chosen_point_even_after_invalid_ones() -> None:
    # matplotlib writes legend text as SVG comments: "chosen" appears only with the star
    front = [
        {"expression": "a", "complexity": None, "loss": 0.3},
        {"expression": "x", "complexity": 2, "loss": 0.1},
    ]
    assert "<!-- chosen -->" in (pareto_svg(front, "x", 2) or "")
    assert "<!-- chosen -->" not in (pareto_svg(front, "a", None) or "")
    assert "<!-- chosen -->" not in (pareto_svg(front, "zz", 99) or "")


def test_embedding_labels_by_name_then_by_number_with_a_key() -> None:
    rng = np.random.default_rng(1)
    few = figures.embedding_svg(rng.normal(size=(3, 2)), ["a", "b", "c"], "t", "d")
    assert "<!-- a -->" in few and "<!-- 1: a -->" not in few
    names = [f"net{i}" for i in range(12)]
    many = figures.embedding_svg(rng.normal(size=(12, 2)), names, "t", "d")
    assert "<!-- 12: net11 -->" in many and "<!-- 12 -->" in many
    assert "<!-- net11 -->" not in many


def test_close_similarities_get_enough_digits() -> None:
    # CKA off-diagonals 0.9945-0.9982 used to print 1.00 everywhere
    m = np.array([[1.0, 0.9945, 0.9982], [0.9945, 1.0, 0.9961], [0.9982, 0.9961, 1.0]])
    assert cell_decimals(m) == 4
    svg = figures.heatmap_svg(m, ["a", "b", "c"], [0, 1, 2], "close")
    for value in ("0.9945", "0.9982", "0.9961", "1.0000"):
        assert f"<!-- {value} -->" in svg
    assert "<!-- 1.00 -->" not in svg
    spread = np.array([[1.0, 0.31, 0.8], [0.31, 1.0, 0.55], [0.8, 0.55, 1.0]])
    assert cell_decimals(spread) == 2
    # a value that two decimals would print like the diagonal gets a third
    assert cell_decimals(np.array([[1.0, 0.5], [0.9981, 1.0]])) == 3
    assert cell_decimals(np.full((2, 2), np.nan)) == 2


def test_pareto_front_draws_no_dominated_point() -> None:
    front = [
        {"expression": "a", "complexity": 3, "loss": 0.5},
        {"expression": "b", "complexity": 7, "loss": 0.01},
        {"expression": "c", "complexity": 8, "loss": 0.02},  # above complexity 7's loss
        {"expression": "d", "complexity": 12, "loss": 0.005},
    ]
    on, off = front_points(front)
    assert on.tolist() == [[3, 0.5], [7, 0.01], [12, 0.005]]
    assert off.tolist() == [[8, 0.02]]
    assert np.all(np.diff(on[:, 1]) < 0)  # along the front, more complexity buys less loss
    svg = pareto_svg(front, "b", 7) or ""
    assert "<!-- dominated candidate -->" in svg and "<!-- Pareto front -->" in svg
    assert "<!-- dominated candidate -->" not in (pareto_svg(front[:2], "b", 7) or "")


def test_consensus_swatches_differ_even_when_one_kind_is_absent() -> None:
    # every component consensus: the legend still shows both kinds in their own colours
    svg = figures.support_svg(["0", "1"], np.array([1.0, 0.9]), np.array([True, True]), 0.8)
    assert "#0072b2" in svg and "#d55e00" in svg
    assert "#1f77b4" not in svg  # matplotlib's default blue, given to an empty series
    shared = figures.sharedness_svg(
        ["0"], np.array([0.9]), np.array([0.5]), np.array([0.2]), np.array([True])
    )
    assert "#d55e00" in shared and "#1f77b4" not in shared


def test_mds_axes_keep_few_ticks() -> None:
    coords = np.array([[-0.12, -0.04], [0.04, 0.11], [0.16, -0.07], [-0.06, -0.04], [0.0, 0.05]])
    svg = figures.embedding_svg(coords, list("abcde"), "t", "shape_distance")
    assert len(re.findall(r'<g id="xtick_\d+">', svg)) <= 6
    assert len(re.findall(r'<g id="ytick_\d+">', svg)) <= 6


def test_labels_of_close_points_go_to_opposite_sides() -> None:
    var, shared = np.array([0.47, 0.45, 0.09, 0.01]), np.array([0.9997, 0.9996, 0.98, 0.75])
    offsets = [figures._label_offset(var, shared, i) for i in range(4)]
    assert offsets == [(5, 4), (-11, -11), (5, 4), (5, 4)]
