"""HTML building blocks and page assembly for the self-contained study report.

Everything that comes from the store is escaped with :func:`html.escape`; figures are inline
SVG; the CSS is embedded; nothing is loaded from the network.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from .svg import inline_svg

CSS = """
:root { --ink: #1b1b1b; --muted: #555; --line: #d0d0d0; --bg-alt: #f5f5f5; --accent: #0072B2; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif;
  color: var(--ink); margin: 0; font-size: 16px; line-height: 1.5; background: #fff; }
main { max-width: 1280px; margin: 0 auto; padding: 1.5rem 2rem 4rem; }
header.page { border-bottom: 3px solid var(--accent); margin-bottom: 1rem; }
h1 { font-size: 1.9rem; margin: 0.2rem 0; }
h2 { font-size: 1.5rem; border-bottom: 1px solid var(--line); padding-bottom: 0.2rem;
  margin-top: 2.5rem; }
h3 { font-size: 1.2rem; margin-top: 1.8rem; }
h4 { font-size: 1.05rem; margin: 1rem 0 0.4rem; }
nav ul { list-style: none; padding: 0; display: flex; gap: 1.2rem; flex-wrap: wrap; }
nav a { color: var(--accent); text-decoration: none; font-weight: 600; }
.chips { display: flex; gap: 0.6rem; flex-wrap: wrap; margin: 0.6rem 0; }
.chip { background: var(--bg-alt); border: 1px solid var(--line); border-radius: 999px;
  padding: 0.15rem 0.8rem; font-size: 0.95rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.95rem; }
th, td { border: 1px solid var(--line); padding: 0.3rem 0.6rem; text-align: left;
  vertical-align: top; }
th { background: #e9eef3; }
tbody tr:nth-child(even) { background: var(--bg-alt); }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td:first-child { white-space: nowrap; }
.arch { display: inline-block; min-width: 16rem; max-width: 34rem; white-space: normal; }
.tablewrap { max-width: 100%; overflow-x: auto; }
.figs { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
figure { margin: 0.5rem 0; display: table; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { display: table-caption; caption-side: bottom; color: var(--muted);
  font-size: 0.9rem; padding-top: 0.2rem; }
.note { border-left: 4px solid #E69F00; background: #fff8e6; padding: 0.5rem 0.9rem;
  margin: 0.6rem 0; }
.none { border-left: 4px solid #D55E00; background: #fdeee6; padding: 0.6rem 0.9rem;
  font-weight: 600; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 0.4rem 1.2rem 1rem;
  margin: 1.2rem 0; }
.formula svg { max-width: 100%; height: auto; }
code, pre { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.9rem; }
pre { background: var(--bg-alt); padding: 0.8rem; overflow-x: auto; max-height: 30rem; }
.ok { font-weight: 600; }
.bad { font-weight: 600; text-decoration: underline wavy #D55E00; }
footer { color: var(--muted); font-size: 0.85rem; margin-top: 3rem;
  border-top: 1px solid var(--line); padding-top: 0.5rem; }
"""


#: keys that name an architecture in a member's attrs, in order of preference
ARCH_NAME_KEYS = ("name", "family", "kind", "type", "class")


class Raw(str):
    """Trusted HTML (already escaped or produced here); inserted into tables unescaped."""


class Num(str):
    """Text of a number (a duration, a formatted value): escaped and right-aligned."""


def esc(value: Any) -> str:
    """Escape any value for HTML text and attributes."""
    return escape(str(value), quote=True)


def fmt(value: Any, digits: int = 4) -> str:
    """Human formatting of one value: floats to ``digits`` significant figures, None as '—'."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


#: decimals of every R^2 the report, results summary and terminal print
R2_DECIMALS = 5


def fmt_r2(value: Any) -> str:
    """An R^2 for people, the same everywhere: five decimals, truncated (never rounded up to
    1, so 0.999996 reads 0.99999 and only a perfect fit reads 1.00000); None as '—'.

    >>> [fmt_r2(v) for v in (0.999996, 0.99999, 1.0, 0.9871234, -0.5, None)]
    ['0.99999', '0.99999', '1.00000', '0.98712', '-0.50000', '—']
    """
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—" if value is None else str(value)
    if not math.isfinite(value):
        return "—"
    scale = 10**R2_DECIMALS
    return f"{math.floor(value * scale + 1e-6) / scale:.{R2_DECIMALS}f}"


def fmt_share(value: Any) -> str:
    """A share such as a support (0..1) to two decimals; None as '—'.

    >>> fmt_share(1.0), fmt_share(2 / 3), fmt_share(None)
    ('1.00', '0.67', '—')
    """
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return "—" if value is None else str(value)
    return f"{value:.2f}"


def r2_cell(value: Any) -> Num:
    """An R^2 as a table cell (right-aligned, :func:`fmt_r2`)."""
    return Num(fmt_r2(value))


def duration(seconds: Any) -> str:
    """A duration for people: ``"<1 ms"``, ``"340 ms"``, ``"3.4 s"``, ``"2 min 05 s"``,
    ``"1 h 02 min"``; '—' when it is not a number.

    >>> [duration(s) for s in (3.368e-06, 0.34, 3.4, 125, 3720)]
    ['<1 ms', '340 ms', '3.4 s', '2 min 05 s', '1 h 02 min']
    """
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        return "—"
    if not math.isfinite(seconds) or seconds < 0:
        return "—"
    if seconds < 1e-3:
        return "<1 ms"
    if seconds < 1:
        return f"{round(seconds * 1000):d} ms"
    if seconds < 59.95:
        return f"{seconds:.1f} s" if seconds < 10 else f"{round(seconds):d} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"


def cell_decimals(matrix: Any, lowest: int = 2, highest: int = 4) -> int:
    """Decimals that tell a matrix's off-diagonal values apart: about ten steps across their
    range (``ceil(-log10(range / 10))``), between ``lowest`` and ``highest``, and more when
    an off-diagonal value would otherwise print like the diagonal (0.998 as 1.00).

    >>> import numpy as np
    >>> cell_decimals(np.array([[1, 0.9945, 0.9982], [0.9945, 1, 0.996], [0.9982, 0.996, 1]]))
    4
    >>> cell_decimals(np.array([[1, 0.2, 0.8], [0.2, 1, 0.5], [0.8, 0.5, 1]]))
    2
    """
    import numpy as np

    m = np.asarray(matrix, dtype=float)
    off = m[~np.eye(*m.shape, dtype=bool)] if m.ndim == 2 else m.ravel()
    off = off[np.isfinite(off)]
    if off.size == 0:
        return lowest
    spread = float(np.ptp(off))
    d = lowest if spread == 0 else math.ceil(-math.log10(spread / 10))
    d = min(max(d, lowest), highest)
    diag = np.diag(m) if m.ndim == 2 else np.array([])
    diag = diag[np.isfinite(diag)]
    while (
        d < highest
        and diag.size
        and any(v != t and f"{v:.{d}f}" == f"{t:.{d}f}" for v in off for t in np.unique(diag))
    ):
        d += 1
    return d


def cell(value: Any) -> str:
    """One ``<td>``: numbers right-aligned, :class:`Raw` inserted as is, the rest escaped."""
    if isinstance(value, Raw):
        return f"<td>{value}</td>"
    numeric = isinstance(value, (int, float, Num)) and not isinstance(value, bool)
    cls = ' class="num"' if numeric else ""
    return f"<td{cls}>{esc(fmt(value))}</td>"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], caption: str = "") -> str:
    """An HTML table; header cells escaped, body cells through :func:`cell`."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (
        f'<div class="tablewrap"><table>{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def note(text: str) -> str:
    """A highlighted note (a section that is skipped, a caveat)."""
    return f'<p class="note">{esc(text)}</p>'


def details(summary: str, body: str) -> str:
    """A collapsed block; ``body`` is trusted HTML."""
    return f"<details><summary>{esc(summary)}</summary>{body}</details>"


@dataclass
class FigureSink:
    """Hands out unique id prefixes and wraps figure SVG in ``<figure>`` elements."""

    count: int = 0
    labels: list[str] = field(default_factory=list)

    def figure(self, svg: str | None, caption: str, *, show_caption: bool = True) -> str:
        """``<figure>`` with the inline SVG and a caption; empty string when ``svg`` is None.

        With ``show_caption=False`` the caption is only the SVG's accessible name.
        """
        if svg is None:
            return ""
        self.count += 1
        self.labels.append(caption)
        body = inline_svg(svg, f"f{self.count}", caption)
        cap = f"<figcaption>{esc(caption)}</figcaption>" if show_caption else ""
        return f"<figure>{body}{cap}</figure>"


def section(anchor: str, title: str, body: str) -> str:
    """A top-level page section with an ``id`` for the navigation."""
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def page(title: str, header: str, sections: Mapping[str, tuple[str, str]], footer: str) -> str:
    """The whole HTML document.

    ``sections`` maps anchor -> (title, body HTML); the navigation lists them in order.
    """
    nav = "".join(f'<li><a href="#{esc(a)}">{esc(t)}</a></li>' for a, (t, _) in sections.items())
    body = "".join(section(a, t, b) for a, (t, b) in sections.items())
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
        f'<header class="page">{header}<nav><ul>{nav}</ul></nav></header>'
        f"{body}<footer>{footer}</footer></main></body></html>\n"
    )
