"""Figures for distilled formulas: typeset formula, Pareto front, predicted vs actual.

The formula is typeset offline: sympy's LaTeX is reduced to the subset matplotlib's mathtext
understands and drawn as SVG paths (no MathJax, no CDN). When mathtext cannot parse it,
:func:`formula_svg` returns None and the page shows the plain expression instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .explain import pareto_mask
from .svg import MARKERS, OKABE_ITO, figure_to_svg, new_figure, styled

log = logging.getLogger(__name__)

_REWRITES = (
    (re.compile(r"\\operatorname\{([^{}]*)\}"), r"\\mathrm{\1}"),
    (re.compile(r"\\text\{([^{}]*)\}"), r"\\mathrm{\1}"),
    (re.compile(r"\\(displaystyle|limits|nolimits)\b\s*"), ""),
    (re.compile(r"\\(dfrac|tfrac)\b"), r"\\frac"),
    (re.compile(r"\\(left|right)\s*(\||\\\|)"), r"\2"),  # mathtext draws \left| badly
)


def sanitize_latex(latex: str) -> str:
    """Rewrite sympy LaTeX into the mathtext subset (``\\operatorname`` -> ``\\mathrm`` ...).

    >>> sanitize_latex(r"\\operatorname{sign}{\\left(x \\right)}")
    '\\\\mathrm{sign}{\\\\left(x \\\\right)}'
    """
    out = latex.strip().strip("$")
    for pattern, repl in _REWRITES:
        out = pattern.sub(repl, out)
    return out.replace("\n", " ")


def mathtext_ok(latex: str) -> bool:
    """Whether matplotlib's mathtext parses ``$latex$``."""
    from matplotlib.mathtext import MathTextParser

    try:
        MathTextParser("path").parse(f"${latex}$", dpi=72)
    except Exception:  # mathtext raises ValueError and pyparsing errors alike
        return False
    return True


def formula_svg(latex: str | None, fontsize: float = 26.0) -> str | None:
    """The formula typeset as SVG, or None when there is none or mathtext cannot parse it."""
    if not latex:
        return None
    clean = sanitize_latex(latex)
    if not clean or not mathtext_ok(clean):
        log.info("formula %r is not renderable by mathtext; falling back to text", latex)
        return None
    with styled():
        fig = new_figure(0.5, 0.4)
        fig.text(0.0, 0.5, f"${clean}$", fontsize=fontsize, va="center")
        return figure_to_svg(fig)


def _chosen_index(
    front: Sequence[Mapping[str, Any]], expression: str | None, complexity: Any
) -> int | None:
    for i, point in enumerate(front):
        if expression is not None and point.get("expression") == expression:
            return i
    for i, point in enumerate(front):
        if complexity is not None and point.get("complexity") == complexity:
            return i
    return None


def _number(value: Any) -> float:
    """``value`` as a float, NaN when it is missing or not a number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return float("nan")


def front_points(front: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(non-dominated, dominated) candidates as (n, 2) arrays of (complexity, loss), the
    non-dominated ones sorted by complexity (see :func:`~ensemble_lens.report.explain.pareto_mask`).
    """
    mask = pareto_mask(front)
    xy = np.array(
        [[_number(p.get("complexity")), _number(p.get("loss"))] for p in front], dtype=float
    ).reshape(-1, 2)
    on = np.array([m is True for m in mask], dtype=bool)
    off = np.array([m is False for m in mask], dtype=bool)
    pareto = xy[on]
    return pareto[np.argsort(pareto[:, 0], kind="stable")], xy[off]


def pareto_svg(
    front: Sequence[Mapping[str, Any]], expression: str | None, complexity: Any
) -> str | None:
    """Complexity against loss: the non-dominated front as a step line, dominated candidates
    as faint crosses, the chosen formula as a star.

    Returns None when the front holds no point with a finite complexity and loss. The loss
    axis is logarithmic when every loss is positive.
    """
    from matplotlib.ticker import MaxNLocator

    pareto, dominated = front_points(front)
    if not len(pareto):
        return None
    chosen = _chosen_index(front, expression, complexity)
    star = (
        [_number(front[chosen].get(k)) for k in ("complexity", "loss")]
        if chosen is not None
        else []
    )
    with styled():
        fig = new_figure(4.8, 3.5)
        ax = fig.add_subplot()
        ax.step(pareto[:, 0], pareto[:, 1], where="post", color="#777777", linewidth=1.0)
        ax.scatter(
            pareto[:, 0],
            pareto[:, 1],
            s=36,
            color=OKABE_ITO[0],
            marker="o",
            edgecolors="black",
            linewidths=0.5,
            zorder=3,
            label="Pareto front",
        )
        if len(dominated):
            ax.scatter(
                dominated[:, 0],
                dominated[:, 1],
                s=24,
                color="#999999",
                marker="x",
                linewidths=1.0,
                alpha=0.7,
                zorder=2,
                label="dominated candidate",
            )
        if star and np.isfinite(star).all():
            ax.scatter(
                [star[0]],
                [star[1]],
                s=220,
                marker="*",
                color=OKABE_ITO[1],
                edgecolors="black",
                linewidths=0.8,
                zorder=4,
                label="chosen",
            )
        every = np.r_[pareto[:, 1], dominated[:, 1]]
        if (every > 0).all():
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # complexity counts nodes
        ax.set_xlabel("complexity")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", frameon=False)
        ax.set_title("Pareto front", loc="left")
        return figure_to_svg(fig)


def _finite_pairs(pred: Any, actual: Any) -> np.ndarray | None:
    if pred is None or actual is None:
        return None
    p = np.asarray(pred, dtype=float).reshape(-1)
    a = np.asarray(actual, dtype=float).reshape(-1)
    if p.size == 0 or p.size != a.size:
        return None
    both = np.column_stack([a, p])
    return both[np.isfinite(both).all(axis=1)]


def pred_actual_svg(record: Mapping[str, Any]) -> str | None:
    """Predicted against actual on the test split and the extrapolation range.

    Uses the optional record keys ``pred_test``/``actual_test`` and
    ``pred_extrapolation``/``actual_extrapolation``; None when neither pair is present.
    """
    series = []
    for i, (key, label) in enumerate((("test", "test split"), ("extrapolation", "extrapolation"))):
        pairs = _finite_pairs(record.get(f"pred_{key}"), record.get(f"actual_{key}"))
        if pairs is not None and len(pairs):
            series.append((label, pairs, OKABE_ITO[i * 5], MARKERS[i]))
    if not series:
        return None
    with styled():
        fig = new_figure(4.4, 3.9)
        ax = fig.add_subplot()
        for label, pairs, colour, marker in series:
            ax.scatter(
                pairs[:, 0],
                pairs[:, 1],
                s=14,
                color=colour,
                marker=marker,
                alpha=0.6,
                linewidths=0,
                label=label,
            )
        allv = np.concatenate([s[1].ravel() for s in series])
        lim = [float(allv.min()), float(allv.max())]
        ax.plot(lim, lim, color="black", linestyle="--", linewidth=1.0, label="y = x")
        ax.set_xlabel("actual (consensus latent)")
        ax.set_ylabel("formula prediction")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", frameon=False)
        ax.set_title("Predicted vs actual", loc="left")
        return figure_to_svg(fig)
