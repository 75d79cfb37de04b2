"""What the analysis stages need to know about a study, whether or not a task made it.

A task knows its variables, the SR primitives its law needs, the input vector its latent turns
with, how the latent relates to the truth, the truth itself (as formulas) and how to draw
inputs on an extrapolation range. A study on the user's own networks and data file knows some
of these from its config (``distill.variables``, ``distill.equivariant_vector``,
``distill.options``) and its probe file (truth columns, extrapolation rows), and nothing more.
:class:`StudyInputs` is that description, built once by :func:`study_inputs` for both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..tasks.formula import parse_formula

Extrapolation = Callable[[int, int], tuple[np.ndarray, dict[str, np.ndarray]] | None]


@dataclass(frozen=True)
class StudyInputs:
    """The study's variables and what is known about its latents.

    Attributes
    ----------
    variables : tuple of str
        Probe variables formulas may use (``distill.variables``, default all named ones).
    sr_functions : tuple of str
        Unary primitives for symbolic regression (a task's ``sr_functions``, or
        ``distill.functions``).
    equivariant_vector : tuple of str or None
        Input variables the latent turns with (``("dx", "dy")``), or None.
    latent_kind : str or None
        ``"vector"``/``"scalar"``/``"monotone"`` for a task; None when unknown.
    truths : dict of str to sympy.Expr or None
        Ground-truth formulas (exact recovery is judged against them); None without.
    has_truth_values : bool
        Whether truth values are known on the probe (a task, or truth columns of a file).
    test_truth : callable or None
        ``test_truth(X_test) -> {name: (n,) array}``: truth values on the test split.
    extrapolation : callable or None
        ``extrapolation(n, seed) -> (X (n, variable), {name: (n,) truth})`` or None.
    input_names : tuple of str or None
        The columns of the ``X`` that ``test_truth`` takes and ``extrapolation`` returns, by
        name (a task's ``input_names``, which a probe file may order differently); None: the
        probe's own columns.
    """

    variables: tuple[str, ...]
    sr_functions: tuple[str, ...] = ()
    equivariant_vector: tuple[str, ...] | None = None
    latent_kind: str | None = None
    truths: dict[str, Any] | None = None
    has_truth_values: bool = False
    test_truth: Callable[[np.ndarray], dict[str, np.ndarray]] | None = field(
        default=None, repr=False
    )
    extrapolation: Extrapolation | None = field(default=None, repr=False)
    input_names: tuple[str, ...] | None = None


def study_inputs(cfg: Any, task: Any, store: Any) -> StudyInputs:
    """The :class:`StudyInputs` of a study: from its task when it has one, else from the
    config and the probe in ``store``."""
    dcfg = cfg.distill
    names = tuple(store.probe_names) if store.has_probe() else ()
    variables = tuple(dcfg.variables) if dcfg.variables else names
    vector = tuple(dcfg.equivariant_vector) if dcfg.equivariant_vector else None
    functions = tuple(dcfg.functions or ())
    if task is not None:
        return StudyInputs(
            variables=variables,
            sr_functions=functions or tuple(task.sr_functions or ()),
            equivariant_vector=vector or task.equivariant_vector,
            latent_kind=task.latent_kind,
            truths=dict(task.latents) if task.latents else None,
            has_truth_values=bool(task.latents),
            test_truth=task.truth,
            extrapolation=_task_extrapolation(task) if task.latents else None,
            input_names=tuple(task.input_names),
        )
    stored = store.truth_names() if store.has_probe() else ()
    # truths the config gave as formulas of the probe's variables (the probe stage kept
    # their text): recovery is judged against them as against a task's
    formulas = (store.study_attrs().get("truth_formulas") or {}) if stored else {}
    return StudyInputs(
        variables=variables,
        sr_functions=functions,
        equivariant_vector=vector,
        truths={k: parse_formula(v, names) for k, v in formulas.items()} or None,
        has_truth_values=bool(stored),
        test_truth=_stored_test_truth(store) if stored else None,
        extrapolation=_stored_extrapolation(store) if stored else None,
    )


def _task_extrapolation(task: Any) -> Extrapolation:
    def draw(n: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        X = np.asarray(task.sample_probe(n, seed, extrapolate=True), np.float64)
        return X, task.truth(X.astype(np.float32))

    return draw


def _stored_test_truth(store: Any) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """Truth columns of the probe on its test split (the rows distill's X_test holds)."""

    def truth(X_test: np.ndarray) -> dict[str, np.ndarray]:
        probe = store.probe()
        test = probe["split"].values == "test"
        return {k: probe[f"truth_{k}"].values[test] for k in store.truth_names()}

    return truth


def _stored_extrapolation(store: Any) -> Extrapolation:
    """The probe file's extrapolation rows (all of them; ``n`` and ``seed`` are not used)."""

    def rows(n: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        ds = store.extrapolation_probe()
        if ds is None:
            return None
        truth = {str(k)[6:]: ds[k].values for k in ds.data_vars if str(k).startswith("truth_")}
        return np.asarray(ds["inputs"].values, np.float64), truth

    return rows
