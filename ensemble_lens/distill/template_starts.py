"""Where a template's constant fit starts: a screened grid over its frequency slots.

The least-squares surface of a frequency over Z_p has a local minimum at every frequency
``2 pi k / p``, and for a wave over two periodic inputs at every pair ``(k1, k2)``, so a fit
must start near the right one. Running the optimiser from every grid point costs one scipy
call each (a few hundred for a joint wave); instead every grid point is *screened*: the
frequency slots are set to the grid point, each phase slot to 0 and to a quarter period, and
the slots in which the template is affine (amplitudes, offsets: found by sympy, second
derivatives zero) are solved by linear least squares. The best few screened points become
starts, beside the formula's own constants and a few random perturbations of them.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import sympy

if TYPE_CHECKING:
    from .template import Template

__all__ = ["fitting_starts"]

log = logging.getLogger(__name__)

#: most grid points screened per function argument (a joint wave over Z_p x Z_q has
#: (p // 2) * q of them: 10000 covers p = q = 139; beyond, the first k1 are screened only)
MAX_GRID = 10000
#: screened grid points kept as starts
N_SCREENED = 6


def _frequency_grids(template: Template) -> list[list[dict[str, float]]]:
    """For each function argument with frequency slots, its grid of frequency values: the slots
    of one argument together (``k1 = 1 .. p // 2``, the others ``-(q // 2) .. q // 2``)."""
    together = [
        [c for c in s.integer_coefs if c in template.frequencies] for s in template.symmetry[0]
    ]
    together = [g for g in together if g]
    done = {c for g in together for c in g}
    together += [[c] for c in template.frequencies if c not in done]
    grids = []
    for slots in together:
        periods = [template.frequencies[c][1] for c in slots]
        axes = [range(1, periods[0] // 2 + 1)] + [range(-(q // 2), q // 2 + 1) for q in periods[1:]]
        if math.prod(len(ax) for ax in axes) > MAX_GRID:
            log.warning(
                "template %s: %d frequency starts for slots %s, only the first %d screened",
                template, math.prod(len(ax) for ax in axes), slots, MAX_GRID,
            )  # fmt: skip
        points = itertools.islice(itertools.product(*axes), MAX_GRID)
        grids.append(
            [
                {c: 2 * math.pi * k / q for c, k, q in zip(slots, ks, periods, strict=True)}
                for ks in points
            ]
        )
    return grids


@functools.lru_cache(maxsize=256)
def _affine_slots(expr: sympy.Expr, slots: tuple[sympy.Symbol, ...]) -> tuple[int, ...]:
    """Indices of a largest-first greedy set of slots in which ``expr`` is jointly affine."""
    chosen: list[int] = []
    for i, s in enumerate(slots):
        if all(sympy.diff(expr, s, slots[j]) == 0 for j in [*chosen, i]):
            chosen.append(i)
    return tuple(chosen)


def _phase_slots(template: Template) -> list[tuple[str, float]]:
    return [(s.phase, s.period / 4) for s in template.symmetry[0] if s.phase is not None]


def _screen(
    template: Template,
    base: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    grid: list[dict[str, float]],
) -> list[np.ndarray]:
    """The best :data:`N_SCREENED` grid points, each with its affine slots solved."""
    slot_names = [s.name for s in template.slots]
    lin = list(_affine_slots(template.expr, template.slots))
    symbols = [*template.slots, *(sympy.Symbol(n) for n in names)]
    columns = sympy.lambdify(
        symbols, [sympy.diff(template.expr, template.slots[i]) for i in lin], "numpy"
    )
    rest = sympy.lambdify(symbols, template.expr.subs({template.slots[i]: 0 for i in lin}), "numpy")
    phases = _phase_slots(template)
    shifts = list(itertools.product(*[(0.0, quarter) for _, quarter in phases]))
    cols = [X[:, j] for j in range(X.shape[1])]
    scored = []
    for point, shift in itertools.product(grid, shifts):
        c = base.copy()
        for name, value in point.items():
            c[slot_names.index(name)] = value
        for (name, _), value in zip(phases, shift, strict=True):
            c[slot_names.index(name)] = value
        with np.errstate(all="ignore"):
            A = np.column_stack([np.broadcast_to(v, y.shape) for v in columns(*c, *cols)])
            r = y - np.broadcast_to(rest(*c, *cols), y.shape)
        if not (np.isfinite(A).all() and np.isfinite(r).all()):
            continue
        coef, *_ = np.linalg.lstsq(A, r, rcond=None)
        c[lin] = coef
        scored.append((float(np.sum((A @ coef - r) ** 2)), c))
    scored.sort(key=lambda t: t[0])
    return [c for _, c in scored[:N_SCREENED]]


def fitting_starts(
    template: Template,
    X: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    *,
    n_random: int,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """Starts of :func:`~ensemble_lens.distill.template.fit_template`: the formula's own
    constants, the screened grid points of each frequency argument, and ``n_random``
    perturbations of the formula's constants."""
    base = np.array([template.init[s.name] for s in template.slots])
    starts = [base]
    for grid in _frequency_grids(template):
        starts += _screen(template, base, X, y, names, grid)
    for _ in range(n_random):
        starts.append(
            base * rng.uniform(0.5, 1.5, size=base.shape) + rng.normal(0, 0.1, base.shape)
        )
    return starts
