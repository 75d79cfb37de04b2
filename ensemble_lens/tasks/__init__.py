"""Known-answer tasks with ground-truth latent quantities, and the task registry.

Built-in tasks are loaded lazily by :func:`get_task` (their modules import torch); importing
this package loads numpy, sympy and pydantic only.

Examples
--------
>>> from ensemble_lens.tasks import get_task, list_tasks
>>> "gravity" in list_tasks()
True
>>> task = get_task("spring")
>>> task.input_names
('dx', 'dy', 'r', 'm_i', 'm_j')
"""

from __future__ import annotations

from typing import Any

from ensemble_lens._imports import import_callable
from ensemble_lens.errors import TaskError
from ensemble_lens.tasks.base import LatentKind, Task, r2_score
from ensemble_lens.tasks.formula import FormulaTask

__all__ = ["FormulaTask", "LatentKind", "Task", "get_task", "list_tasks", "r2_score"]

_BUILTIN: dict[str, str] = {
    "gravity": "ensemble_lens.tasks.nbody:GravityTask",
    "spring": "ensemble_lens.tasks.nbody:SpringTask",
    "charge": "ensemble_lens.tasks.nbody:ChargeTask",
    "screened": "ensemble_lens.tasks.nbody:ScreenedTask",
    "pair_energy": "ensemble_lens.tasks.pair_energy:PairEnergyTask",
    "harmonic": "ensemble_lens.tasks.conserved:HarmonicTask",
    "pendulum": "ensemble_lens.tasks.conserved:PendulumTask",
    "matrix_invariants": "ensemble_lens.tasks.conserved:MatrixInvariantsTask",
    "kepler": "ensemble_lens.tasks.bottleneck:KeplerTask",
    "bottleneck": "ensemble_lens.tasks.bottleneck:BottleneckTask",
    "modular": "ensemble_lens.tasks.modular:ModularAdditionTask",
}


def list_tasks() -> list[str]:
    """Names of the built-in tasks, sorted."""
    return sorted(_BUILTIN)


def _resolve(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise TaskError(
            f"task spec {spec!r}: expected a built-in name ({', '.join(list_tasks())}) "
            "or 'module:callable'"
        )
    return import_callable(spec, "task spec", TaskError)


def get_task(name_or_spec: str, **params: Any) -> Task:
    """Resolve a task by built-in name or ``"module:callable"``.

    Parameters
    ----------
    name_or_spec : str
        A built-in name (see :func:`list_tasks`) or ``"package.module:callable"``; the callable
        (a :class:`Task` subclass or a factory) is called with ``**params``.
    **params
        Keyword parameters of the task constructor / factory.

    Returns
    -------
    Task

    Raises
    ------
    TaskError
        Unknown name, import or attribute failure, a constructor that rejects ``params``, or a
        callable that does not return a :class:`Task`.
    """
    if not isinstance(name_or_spec, str):
        raise TaskError(f"task spec: expected a str, got {type(name_or_spec).__name__}")
    spec = _BUILTIN.get(name_or_spec, name_or_spec)
    if ":" not in spec:
        raise TaskError(
            f"unknown task {name_or_spec!r}: expected one of {', '.join(list_tasks())} "
            "or 'module:callable'"
        )
    factory = _resolve(spec)
    if not callable(factory):
        raise TaskError(f"task spec {name_or_spec!r}: {spec!r} is not callable")
    try:
        task = factory(**params)
    except TypeError as err:
        raise TaskError(f"task spec {name_or_spec!r}: bad parameters {params}: {err}") from err
    if not isinstance(task, Task):
        raise TaskError(
            f"task spec {name_or_spec!r}: expected the callable to return a "
            f"ensemble_lens.tasks.Task, got {type(task).__name__}"
        )
    return task
