"""Report figures: pure functions from numbers to SVG text.

Every function takes plain numpy arrays / lists, draws on a detached
:class:`matplotlib.figure.Figure` (Agg-free SVG output, no pyplot state) and returns the SVG
document text; :func:`ensemble_lens.report.svg.inline_svg` prepares it for the page.
Colour maps are viridis/cividis (perceptually uniform, greyscale- and colour-blind safe);
categories use the Okabe-Ito palette *and* distinct markers or hatching.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .html import cell_decimals
from .svg import MARKERS, OKABE_ITO, figure_to_svg, new_figure, styled

_NAMED_POINTS = 10  # embeddings with more networks label points by number, with a key
_IN_PER_CHAR = 0.075  # approximate width of one 10 pt tick-label character, inches


def _label_width(labels: Sequence[str]) -> float:
    return 0.25 + _IN_PER_CHAR * max((len(s) for s in labels), default=1)


def _text_colour(cmap, norm, value: float) -> str:
    """Black or white, whichever reads better on the cell colour of ``value``."""
    r, g, b, _ = cmap(norm(value))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _annotate_cells(ax, values: np.ndarray, cmap, norm, cell_format: str) -> None:
    k = values.shape[0]
    size = 9 if k <= 8 else 7
    for i in range(k):
        for j in range(k):
            v = values[i, j]
            if np.isfinite(v):
                colour = _text_colour(cmap, norm, v)
                ax.text(
                    j + 0.5,
                    i + 0.5,
                    cell_format.format(v),
                    ha="center",
                    va="center",
                    fontsize=size,
                    color=colour,
                )


def _dendrogram(fig, linkage: np.ndarray, rect: tuple[float, ...], k: int) -> None:
    from scipy.cluster.hierarchy import dendrogram

    dax = fig.add_axes(rect)
    dendrogram(
        linkage,
        orientation="left",
        ax=dax,
        no_labels=True,
        color_threshold=0,
        above_threshold_color="#444444",
    )
    dax.set_ylim(10 * k, 0)  # leaves at 5, 15, ...: top-down like the heatmap rows
    dax.axis("off")


def _colour_range(values: np.ndarray, value_range: tuple[float, float] | None):
    finite = values[np.isfinite(values)]
    lo, hi = value_range or ((finite.min(), finite.max()) if finite.size else (0.0, 1.0))
    return (lo - 0.5, hi + 0.5) if hi <= lo else (lo, hi)


def heatmap_svg(
    matrix: np.ndarray,
    labels: Sequence[str],
    order: Sequence[int],
    title: str,
    *,
    linkage: np.ndarray | None = None,
    cmap_name: str = "viridis",
    value_range: tuple[float, float] | None = None,
    cell_format: str | None = None,
) -> str:
    """A K x K heatmap, rows and columns in ``order``, with the dendrogram on the left.

    Parameters
    ----------
    matrix
        (K, K) values, in the original model order.
    labels
        K model ids, original order.
    order
        Permutation of ``range(K)`` (leaf order of ``linkage`` when given).
    linkage
        scipy linkage matrix ((K - 1, 4)); no dendrogram when None or K < 3.
    value_range
        Colour scale limits; default the finite min/max of ``matrix``.
    cell_format
        Format of the value written in each cell (cells are annotated when K <= 12); default
        fixed-point with :func:`~ensemble_lens.report.html.cell_decimals` decimals, so close
        values (CKA 0.9945 to 0.9982) are told apart.
    """
    import matplotlib as mpl

    idx = np.asarray(order, dtype=int)
    values = np.asarray(matrix, dtype=float)[np.ix_(idx, idx)]
    names = [str(labels[i]) for i in idx]
    k = len(names)
    if cell_format is None:
        cell_format = f"{{:.{cell_decimals(values)}f}}"
    # layout in inches: [dendrogram][labels][K x K cells][colorbar]; a cell fits its text
    chars = len(cell_format.format(0.5)) if k <= 12 else 0  # 9 pt digits, ~0.065 in each
    per_cell = max(0.42, 0.065 * chars + 0.08)
    side, lab = float(np.clip(per_cell * k, 2.4, 9.0)), _label_width(names)
    dend = 1.1 if linkage is not None and k >= 3 else 0.0
    width, height = 0.2 + dend + lab + side + 1.1, 0.6 + side + lab * 0.8
    bottom, h = lab * 0.8 / height, side / height
    cmap, norm = mpl.colormaps[cmap_name], mpl.colors.Normalize(*_colour_range(values, value_range))
    with styled():
        fig = new_figure(width, height)
        ax = fig.add_axes(((0.1 + dend + lab) / width, bottom, side / width, h))
        mesh = ax.pcolormesh(
            np.ma.masked_invalid(values), cmap=cmap, norm=norm, edgecolors="white", linewidth=0.5
        )
        ax.set_xlim(0, k)
        ax.set_ylim(k, 0)
        ax.set_xticks(np.arange(k) + 0.5, names, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(np.arange(k) + 0.5, names)
        ax.tick_params(length=0)
        ax.spines[:].set_visible(False)
        if k <= 12:
            _annotate_cells(ax, values, cmap, norm, cell_format)
        ax.set_title(title, loc="left")
        cax = fig.add_axes(((0.25 + dend + lab + side) / width, bottom, 0.18 / width, h))
        fig.colorbar(mesh, cax=cax)
        if dend and linkage is not None:
            _dendrogram(fig, linkage, (0.1 / width, bottom, (dend - 0.05) / width, h), k)
        return figure_to_svg(fig)


def embedding_svg(coords: np.ndarray, labels: Sequence[str], title: str, xlabel: str) -> str:
    """Scatter of a 2-D embedding of the networks (one labelled point per model).

    ``coords`` is (K, 2); a (K, 1) embedding is drawn on a line at y = 0. Up to
    ``_NAMED_POINTS`` networks are labelled by name; beyond that by number, with a key.
    """
    from matplotlib.ticker import MaxNLocator

    pts = np.asarray(coords, dtype=float)
    if pts.shape[1] == 1:
        pts = np.column_stack([pts[:, 0], np.zeros(len(pts))])
    numbered = len(pts) > _NAMED_POINTS
    with styled():
        fig = new_figure(5.6, 4.6)
        ax = fig.add_subplot()
        for i, (x, y) in enumerate(pts):
            ax.scatter(
                x,
                y,
                s=70,
                color=OKABE_ITO[i % 8],
                marker=MARKERS[(i // 8) % 8],
                edgecolors="black",
                linewidths=0.6,
                zorder=3,
                label=f"{i + 1}: {labels[i]}",
            )
            text = str(i + 1) if numbered else str(labels[i])
            ax.annotate(text, (x, y), xytext=(6, 5), textcoords="offset points", fontsize=10)
        if numbered:
            ax.legend(
                loc="upper left",
                bbox_to_anchor=(1.02, 1.0),
                frameon=False,
                fontsize=8,
                ncol=1 + len(pts) // 26,
                handletextpad=0.2,
            )
        span = np.ptp(pts, axis=0).max() if len(pts) > 1 else 1.0
        span = span if span > 0 else 1.0
        centre = pts.mean(axis=0)
        ax.set_xlim(centre[0] - 0.65 * span, centre[0] + 0.75 * span)
        ax.set_ylim(centre[1] - 0.7 * span, centre[1] + 0.7 * span)
        ax.set_aspect("equal", adjustable="box")
        for axis in (ax.xaxis, ax.yaxis):  # few ticks: long labels like -0.15 never touch
            axis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]))
        ax.set_xlabel(f"MDS 1 ({xlabel})")
        ax.set_ylabel("MDS 2")
        ax.grid(alpha=0.3)
        ax.set_title(title, loc="left")
        return figure_to_svg(fig)


#: consensus and not-consensus styles: blue filled vs vermillion open (and circle vs square,
#: solid vs hatched), apart in colour for every colour-vision type and in greyscale
CONSENSUS_COLOUR, OTHER_COLOUR = OKABE_ITO[0], OKABE_ITO[5]


def kind_handles(kind: str) -> list:
    """Legend handles for consensus / not consensus, drawn from the styles, not from the data
    (an empty series would otherwise give its legend entry matplotlib's default colour)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if kind == "bar":
        return [
            Patch(facecolor=CONSENSUS_COLOUR, edgecolor="black", label="consensus"),
            Patch(facecolor="white", edgecolor=OTHER_COLOUR, hatch="///", label="not consensus"),
        ]
    common = {"linestyle": "none", "markersize": 8}
    return [
        Line2D(
            [],
            [],
            marker="o",
            color=CONSENSUS_COLOUR,
            markeredgecolor="black",
            label="consensus",
            **common,
        ),
        Line2D(
            [],
            [],
            marker="s",
            markerfacecolor="white",
            markeredgecolor=OTHER_COLOUR,
            markeredgewidth=1.4,
            label="not consensus",
            **common,
        ),
    ]


def _by_kind(ax, xs: np.ndarray, ys: np.ndarray, cons: np.ndarray) -> None:
    """Consensus as filled blue circles, the rest as open vermillion squares."""
    if cons.any():
        ax.scatter(
            xs[cons],
            ys[cons],
            s=60,
            marker="o",
            color=CONSENSUS_COLOUR,
            edgecolors="black",
            linewidths=0.6,
            zorder=3,
        )
    if (~cons).any():
        ax.scatter(
            xs[~cons],
            ys[~cons],
            s=60,
            marker="s",
            facecolors="white",
            edgecolors=OTHER_COLOUR,
            linewidths=1.4,
            zorder=3,
        )


def _finite_span(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return max(float(finite.max() - finite.min()), 1e-12) if finite.size else 1.0


def _label_offset(xs: np.ndarray, ys: np.ndarray, i: int, near: float = 0.08) -> tuple:
    """Label offset (points) of point ``i``: up-right, or down-left when an earlier point lies
    within ``near`` of its axis spans, so two close points' labels do not overprint."""
    span_x, span_y = (_finite_span(v) for v in (xs, ys))
    close = (np.abs(xs[:i] - xs[i]) < near * span_x) & (np.abs(ys[:i] - ys[i]) < near * span_y)
    return (-11, -11) if close.any() else (5, 4)


def sharedness_svg(
    components: Sequence[str],
    sharedness: np.ndarray,
    variance: np.ndarray,
    null_threshold: np.ndarray,
    is_consensus: np.ndarray,
) -> str:
    """Two panels: sharedness per component over its null band, and sharedness vs variance.

    All arrays are (component,); needs at least one component. Consensus components are
    filled blue circles, the others open vermillion squares, so the kinds differ without colour.
    """
    x = np.arange(len(components))
    cons = np.asarray(is_consensus, dtype=bool)
    var = np.asarray(variance, dtype=float)
    with styled():
        fig = new_figure(10.5, 4.2)
        ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"wspace": 0.3})
        ax1.fill_between(
            np.r_[x - 0.5, x[-1] + 0.5],
            0,
            np.r_[null_threshold, null_threshold[-1:]],
            step="post",
            facecolor="#DDDDDD",
            hatch="///",
            edgecolor="#888888",
            linewidth=0.5,
            label="null band",
        )
        _by_kind(ax1, x, sharedness, cons)
        _by_kind(ax2, var, sharedness, cons)
        for i, name in enumerate(components):
            ax2.annotate(
                str(name),
                (var[i], sharedness[i]),
                xytext=_label_offset(var, np.asarray(sharedness, dtype=float), i),
                textcoords="offset points",
                fontsize=9,
            )
        ax1.set_xticks(x, [str(c) for c in components], rotation=45 if len(x) > 10 else 0)
        ax1.set(xlabel="component", ylabel="sharedness")
        ax1.set_title("Sharedness vs null threshold", loc="left")
        ax2.set(xlabel="variance", ylabel="sharedness")
        ax2.set_title("Sharedness vs variance", loc="left")
        fig.legend(
            handles=[*ax1.get_legend_handles_labels()[0], *kind_handles("marker")],
            loc="lower center",
            ncol=3,
            frameon=False,
            bbox_to_anchor=(0.5, -0.12),
        )
        for ax in (ax1, ax2):
            ax.grid(alpha=0.3)
        return figure_to_svg(fig)


def support_svg(
    components: Sequence[str],
    support: np.ndarray,
    is_consensus: np.ndarray,
    p_support: float | None,
) -> str:
    """Bar chart of the fraction of members supporting each component.

    Consensus bars are solid blue, others white with vermillion hatching; a dashed line marks the
    support required (``p_support``) when known.
    """
    x = np.arange(len(components))
    cons = np.asarray(is_consensus, dtype=bool)
    with styled():
        fig = new_figure(max(4.5, 0.45 * len(x) + 2.0), 3.4)
        ax = fig.add_subplot()
        ax.bar(x[cons], support[cons], color=CONSENSUS_COLOUR, edgecolor="black")
        ax.bar(x[~cons], support[~cons], color="white", edgecolor=OTHER_COLOUR, hatch="///")
        if p_support is not None:
            ax.axhline(
                p_support,
                color="black",
                linestyle="--",
                linewidth=1.2,
                label=f"required ({p_support:g})",
            )
        ax.set_ylim(0, 1.05)
        ax.set_xticks(x, [str(c) for c in components], rotation=45 if len(x) > 10 else 0)
        ax.set_xlabel("component")
        ax.set_ylabel("fraction of members")
        ax.set_title("Support across members", loc="left")
        ax.legend(
            handles=[*kind_handles("bar"), *ax.get_legend_handles_labels()[0]],
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            frameon=False,
        )
        return figure_to_svg(fig)


def member_support_svg(
    member_support: np.ndarray, models: Sequence[str], components: Sequence[str]
) -> str:
    """Grid of which member (row) supports which component (column): filled = supports."""
    import matplotlib as mpl

    grid = np.asarray(member_support, dtype=float)
    k, c = grid.shape
    lab = _label_width(models)
    with styled():
        fig = new_figure(lab + max(2.5, 0.4 * c) + 0.4, 0.9 + max(1.2, 0.32 * k))
        ax = fig.add_subplot()
        cmap = mpl.colors.ListedColormap(
            ["#F2F2F2", mpl.colors.to_hex(mpl.colormaps["cividis"](0.0))]
        )
        ax.pcolormesh(grid, cmap=cmap, vmin=0, vmax=1, edgecolors="white", linewidth=1.0)
        for i, j in zip(*np.nonzero(grid > 0.5), strict=True):
            ax.text(j + 0.5, i + 0.5, "✓", ha="center", va="center", color="white", fontsize=9)
        ax.set_xlim(0, c)
        ax.set_ylim(k, 0)
        ax.set_xticks(np.arange(c) + 0.5, [str(s) for s in components])
        ax.set_yticks(np.arange(k) + 0.5, [str(m) for m in models])
        ax.tick_params(length=0)
        ax.set_xlabel("component")
        ax.set_title("Member support (dark = supports)", loc="left")
        return figure_to_svg(fig)


def vector_scatter_svg(
    basis: np.ndarray, mapped: np.ndarray, names: Sequence[str], max_points: int = 1500
) -> str:
    """Aligned vector components (y) against the equivariant input basis (x), one panel each.

    Both arrays are (sample, vector_component); a deterministic subsample of at most
    ``max_points`` samples is drawn.
    """
    n, d = mapped.shape
    keep = np.linspace(0, n - 1, min(n, max_points)).astype(int)
    with styled():
        fig = new_figure(min(3.6 * d, 12.0), 3.6)
        axes = np.atleast_1d(fig.subplots(1, d, squeeze=False)[0])
        for j, ax in enumerate(axes):
            xs, ys = basis[keep, j], mapped[keep, j]
            ax.scatter(xs, ys, s=8, color=OKABE_ITO[0], alpha=0.5, linewidths=0)
            lim = [np.nanmin(np.r_[xs, ys]), np.nanmax(np.r_[xs, ys])]
            ax.plot(lim, lim, color="black", linestyle="--", linewidth=1.0, label="y = x")
            ax.set_xlabel(f"input basis {names[j]}")
            ax.set_ylabel(f"aligned {names[j]}")
            ax.grid(alpha=0.3)
        axes[0].legend(loc="upper left", frameon=False)
        fig.suptitle("Aligned vector components against the input basis", x=0.02, ha="left")
        return figure_to_svg(fig)


def constants_strip_svg(values: dict[str, dict[str, list[float]]]) -> str:
    """One panel per constant (slot): each member's fitted values as points on a strip, with
    a box of all values; ``values`` maps slot -> member -> values (one per explained
    component). Members keep one colour and marker across panels."""
    slots = [s for s, per in values.items() if per]
    members = sorted({m for per in values.values() for m in per})
    with styled():
        fig = new_figure(min(2.2 * len(slots) + 1.8, 13.0), 3.2)
        axes = np.atleast_1d(fig.subplots(1, len(slots), squeeze=False)[0])
        for ax, slot in zip(axes, slots, strict=True):
            pooled = [v for vs in values[slot].values() for v in vs]
            ax.boxplot([pooled], widths=0.5, showfliers=False)
            for i, m in enumerate(members):
                vs = values[slot].get(m, [])
                jitter = 1 + 0.25 * (i / max(len(members) - 1, 1) - 0.5)
                ax.scatter(
                    [jitter] * len(vs), vs, s=22, color=OKABE_ITO[i % len(OKABE_ITO)],
                    marker=MARKERS[i % len(MARKERS)], label=m, zorder=3,
                )  # fmt: skip
            ax.set_xticks([1], [slot])
            ax.grid(alpha=0.3, axis="y")
        axes[0].set_ylabel("fitted value")
        axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
        fig.suptitle("Template constants across members", x=0.02, ha="left")
        return figure_to_svg(fig)
