"""Turning matplotlib figures into self-contained inline SVG, plus the shared plot style.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot, no global backend),
saved as SVG with text drawn as paths (no font files needed by the browser), then cleaned for
inlining into HTML: no XML prolog, no DOCTYPE, no metadata, no namespace URLs, and every ``id``
prefixed so that several figures on one page never share an id.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Okabe & Ito (2008) colour-blind safe categorical palette.
OKABE_ITO = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
)
#: Markers paired with the palette, so series differ in greyscale too.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")

_RC: dict[Any, Any] = {
    "svg.fonttype": "path",
    "svg.hashsalt": "ensemble_lens",
    "font.size": 11.0,
    "axes.titlesize": 12.0,
    "axes.labelsize": 11.0,
    "xtick.labelsize": 10.0,
    "ytick.labelsize": 10.0,
    "legend.fontsize": 10.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
}

_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_COMMENT = re.compile(r"<!--.*?-->\s*", re.S)
_XMLNS = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
_REF = re.compile(r'(\bid="|href="#|url\(#)([^")]+)')


def new_figure(width: float, height: float) -> Figure:
    """A fresh Figure of ``width`` x ``height`` inches, detached from pyplot."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


@contextmanager
def styled() -> Iterator[None]:
    """Temporarily apply the report's plot style (font sizes, spines) while drawing."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        yield


def figure_to_svg(fig: Figure) -> str:
    """Save ``fig`` as SVG text (deterministic: fixed id salt, no date)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(
            buf, format="svg", metadata={"Date": None}, bbox_inches="tight", pad_inches=0.08
        )
    return buf.getvalue()


def inline_svg(svg: str, prefix: str, label: str) -> str:
    """Clean matplotlib SVG text for inlining into an HTML page.

    Drops the prolog, metadata, comments (matplotlib writes each text's string as one) and
    namespace declarations; ``xlink:href`` becomes ``href``.

    Parameters
    ----------
    svg
        SVG document text as written by matplotlib.
    prefix
        Unique per figure on the page; prepended to every ``id`` and reference.
    label
        Accessible name of the figure (``aria-label``); escaped here.
    """
    from html import escape

    out = _PROLOG.sub("", svg, count=1)
    out = _METADATA.sub("", out)
    out = _COMMENT.sub("", out)
    out = _XMLNS.sub("", out)
    out = out.replace("xlink:href=", "href=")
    out = _REF.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", out)
    attrs = f'<svg role="img" aria-label="{escape(label, quote=True)}" '
    return out.replace("<svg ", attrs, 1).strip()
