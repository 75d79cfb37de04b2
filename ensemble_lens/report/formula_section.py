"""The report's formulas section: a summary table, then one card per formula.

Takes the dict from :func:`ensemble_lens.report.results.collect_results`; a study without
ground truth says so once and shows no recovery column.
"""

from __future__ import annotations

from typing import Any

from ..distill.constants import PINNED, pinned_summary
from ..distill.extrapolation import REFERENCE_TRUTH
from .formula_figures import formula_svg, pareto_svg, pred_actual_svg
from .html import FigureSink, Num, Raw, details, duration, esc, fmt, note, r2_cell, table


# -------------------------------------------------------------------- formulas
def _verdict(value: Any) -> Raw:
    if value is None:
        return Raw("not judged (no truth matched)")
    return Raw(
        '<span class="ok">exact recovery</span>' if value else '<span class="bad">not exact</span>'
    )


def _member_table(rec: dict[str, Any], low: list[str]) -> str:
    r2 = rec.get("member_r2") or {}
    if not r2:
        return note("No per-member R² recorded.")
    rows = [
        [m, r2_cell(v), Raw('<span class="bad">disagrees</span>') if m in low else "agrees"]
        for m, v in sorted(r2.items())
    ]
    head = (
        f"<p>{len(low)} of {len(r2)} members disagree (R² below 0.9): "
        f"{esc(', '.join(low)) or 'none'}.</p>"
    )
    return head + details("R² per member", table(["member", "R²", "verdict"], rows))


_FORMULA_STATS = (
    ("complexity", "complexity"),
    ("R² test", "r2_test"),
    ("R² extrapolation", "r2_extrapolation"),
    ("gradient agreement", "gradient_agreement"),
    ("support", "support"),
    ("recovery", "exact_recovery"),
    ("truth", "truth_name"),
)
_TRUTH_KEYS = ("exact_recovery", "truth_name")


_R2_KEYS = ("r2_test", "r2_extrapolation")


def _stat(rec: dict[str, Any], key: str) -> Any:
    """One cell of a formula card's statistics row (R^2 with :func:`~.html.fmt_r2`)."""
    if key == "exact_recovery":
        return _verdict(rec.get(key))
    return r2_cell(rec.get(key)) if key in _R2_KEYS else rec.get(key)


def _bootstrap_note(rec: dict[str, Any]) -> str:
    """The member bootstrap's verdict, when it ran (``distill.bootstrap``)."""
    share = rec.get("bootstrap_agreement")
    if share is None:
        return ""
    flagged = (
        " Flagged: it depends on which members are in the ensemble."
        if ("bootstrap" in (rec.get("flags") or []))
        else ""
    )
    return note(
        f"Member bootstrap: this form came back in {share:.0%} of "
        f"{rec.get('bootstrap_resamples')} resamples of the members "
        f"({rec.get('bootstrap_forms')} distinct forms).{flagged}"
    )


def _interval(value: Any, low: Any, high: Any) -> str:
    """``value [low, high]`` to 4 significant figures; '—' without a value."""
    if value is None:
        return "—"
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


#: what each constant column of a formula card holds, and which one to quote
WHICH_CONSTANT = (
    "Which value is which: the formula above is written with the search's constants (fitted "
    "on the fit split, rounded to 4 figures; 'in the formula'). 'consensus' refits them on the "
    "test split, 'members' on each member's own component, 'extrapolation' on the "
    "extrapolation range, all in canonical form; the value to quote is 'best-supported'."
)


def _written_constants(expression: str | None, n: int) -> list[float] | None:
    """The constants as the formula is written (its slots' order), or None when they cannot
    be read back one per slot."""
    import sympy

    from ..distill._expr import parse_written
    from ..distill.constants import template

    if not expression:
        return None
    try:
        values = template(parse_written(expression)).values
    except (sympy.SympifyError, SyntaxError, TypeError, ValueError):
        return None
    return list(values) if len(values) == n else None


def _constants_block(rec: dict[str, Any]) -> str:
    """Each constant refitted on the consensus, the members and the extrapolation range, its
    verdict and its best-supported value (``distill.constants``)."""
    cons = rec.get("constants") or {}
    rows_in = cons.get("constants") or []
    if not rows_in:
        return ""
    written = _written_constants(rec.get("expression"), len(rows_in))
    rows = [
        [
            c["name"],
            *([written[i]] if written else []),
            _interval(c.get("value"), c.get("profile_low"), c.get("profile_high")),
            _interval(c.get("median"), c.get("low"), c.get("high")),
            _interval(c.get("extrapolation"), c.get("extrapolation_low"),
                      c.get("extrapolation_high")),
            Raw(f'<span class="{"ok" if c.get("verdict") in PINNED else "bad"}">'
                f"{esc(c.get('verdict'))}</span>: {esc(c.get('reason'))}"),
            f"{fmt(c.get('best'))} ({c.get('best_source')})",
        ]
        for i, c in enumerate(rows_in)
    ]  # fmt: skip
    headers = ["constant", *(["in the formula"] if written else []), "consensus [profile]",
               f"members [{cons.get('interval')}]", "extrapolation [profile]", "verdict",
               "best-supported"]  # fmt: skip
    lead = (
        f"<p>Constants of <code>{esc(cons.get('template'))}</code>: "
        f"{esc(pinned_summary(cons))}.</p>" + note(WHICH_CONSTANT)
    )
    notes = "".join(note(c["best_note"]) for c in rows_in if c.get("best_note"))
    if cons.get("best_from_extrapolation"):
        verdict = rec.get("exact_recovery_best")
        said = "" if verdict is None else (" (exact recovery)" if verdict else " (not exact)")
        notes += note(f"With the best-supported constants: {cons['best_expression']}{said}.")
    return lead + notes + details("Constants (table)", table(headers, rows))


def _extrapolation_note(rec: dict[str, Any]) -> str:
    """What the extrapolation R² was measured against, or why it was not measured."""
    ref = rec.get("extrapolation_reference")
    if ref == REFERENCE_TRUTH:
        return note("R² extrapolation: against the truth on the extrapolation range.")
    if ref:
        return note(f"R² extrapolation: against the {ref} (no truth there).")
    return note(rec["extrapolation_note"]) if rec.get("extrapolation_note") else ""


def _front_table(front: list[dict[str, Any]], on_front: list[bool | None]) -> str:
    if not front:
        return note("No Pareto front recorded.")
    label = {True: "yes", False: "dominated", None: "—"}
    rows = [
        [
            p.get("complexity"),
            p.get("loss"),
            label[on],
            Raw(f"<code>{esc(p.get('expression'))}</code>"),
        ]
        for p, on in zip(front, on_front, strict=True)
    ]
    headers = ["complexity", "loss", "on the front", "expression"]
    return details("Pareto front (table)", table(headers, rows))


def _search_table(rec: dict[str, Any], check: dict[str, Any]) -> str:
    """Backend, the SR seed as run (base + component index) and the search time."""
    seed = check["seed"]
    tried = rec.get("seeds_tried")
    tried_text = ", ".join(map(str, tried)) if isinstance(tried, list) and tried else "—"
    return table(
        ["backend", "SR seed as run", "seeds tried", "time"],
        [[rec.get("backend"), seed["statement"], tried_text, Num(duration(rec.get("seconds")))]],
    )


def _formula_card(
    rec: dict[str, Any], check: dict[str, Any], sink: FigureSink, judged: bool
) -> str:
    where = f"Layer <code>{esc(rec.get('layer'))}</code>, component {esc(rec.get('component'))}"
    title = f"<h3>{where}</h3>"
    if rec.get("expression") is None:
        reason = f" {rec['reason']}" if rec.get("reason") else ""
        rejected = rec.get("rejected_expression")
        what = (
            f"Formula rejected: <code>{esc(rejected)}</code>."
            if rejected
            else "No formula found for this component."
        )
        body = f'<p class="none">{what}{esc(reason)}</p>{_extrapolation_note(rec)}'
        return f'<div class="card">{title}{body}{_search_table(rec, check)}</div>'
    svg = formula_svg(rec.get("latex"))
    typeset = sink.figure(svg, f"formula: {rec['expression']}", show_caption=False)
    shown = (
        f'<div class="formula">{typeset}</div>'
        if svg
        else note("Formula shown as text: the LaTeX could not be typeset offline.")
    )
    stats_cols = [(h, k) for h, k in _FORMULA_STATS if judged or k not in _TRUTH_KEYS]
    stats_row = [_stat(rec, key) for _, key in stats_cols]
    stats = table([h for h, _ in stats_cols], [stats_row]) + _search_table(rec, check)
    stats += _extrapolation_note(rec) + _bootstrap_note(rec) + _constants_block(rec)
    front = rec.get("front") or []
    pareto = pareto_svg(front, rec.get("expression"), rec.get("complexity"))
    crosses = "; crosses: dominated candidates" if False in check["front_on_pareto"] else ""
    figs = sink.figure(
        pareto, f"Pareto front{crosses}; the star is the chosen formula."
    ) + sink.figure(pred_actual_svg(rec), "Formula prediction against the consensus latent.")
    if rec.get("reduced_modulo"):
        stats += note(
            f"Reduced modulo component {', '.join(map(str, rec['reduced_modulo']))}: the "
            f"component is this formula + {rec.get('modulo_expression')} (R² test of that "
            "sum; support and member R² of the remainder). The search wrote "
            f"{rec.get('unreduced_expression')}."
        )
    return (
        f'<div class="card">{title}{shown}<p><code>{esc(rec["expression"])}</code></p>{stats}'
        f"{_member_table(rec, check['disagreeing_members'])}"
        f'<div class="figs">{figs}</div>{_front_table(front, check["front_on_pareto"])}</div>'
    )


def _lead(results: dict[str, Any]) -> str:
    """What the reader needs before the table: how consensus became formulas, the truth."""
    layers = results["consensus"]
    bridges = [
        f"<li>Layer <code>{esc(name)}</code>: {esc(entry['formula_bridge'])}</li>"
        for name, entry in layers.items()
        if any(f.get("layer") == name for f in results["formulas"])
    ]
    truth = results["ground_truth"]
    text = esc(truth["statement"][0].upper() + truth["statement"][1:])
    said = f"<p>{text}.</p>" if truth["judged"] else f'<p class="note">{text}.</p>'
    seeds = f"<p>{esc(results['seed_rule'])}.</p>"
    return (f"<ul>{''.join(bridges)}</ul>" if bridges else "") + said + seeds


def formulas_section(results: dict[str, Any], sink: FigureSink) -> str:
    """How the consensus became formulas, a summary table, then one card per formula."""
    recs = results["formulas"]
    if not recs:
        return note("No formulas in the store: run the distill stage to fill this.")
    judged = results["ground_truth"]["judged"]
    rows = [
        [
            r.get("layer"),
            r.get("component"),
            Raw(f"<code>{esc(r['expression'])}</code>")
            if r.get("expression") is not None
            else Raw("<em>no formula found</em>"),
            r2_cell(r.get("r2_test")),
            r2_cell(r.get("r2_extrapolation")),
            r.get("support"),
            pinned_summary(r.get("constants")) if r.get("expression") else "—",
            *(
                [
                    _verdict(r.get("exact_recovery")) if r.get("expression") else "—",
                    _verdict(r.get("exact_recovery_best"))
                    if r.get("expression") and r.get("exact_recovery_best") is not None
                    else "—",
                ]
                if judged
                else []
            ),
        ]
        for r in recs
    ]
    headers = ["layer", "component", "expression", "R² test", "R² extrapolation", "support"]
    headers.append("constants")
    recovery = ["recovery", "recovery, best-supported constants"] if judged else []
    summary = table([*headers, *recovery], rows)
    cards = "".join(
        _formula_card(r, c, sink, judged)
        for r, c in zip(recs, results["formula_checks"], strict=True)
    )
    return _lead(results) + summary + cards
