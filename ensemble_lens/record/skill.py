"""How well a network trained elsewhere predicts what it was trained on: its output against
the probe's target columns (``probe.target``), the skill that a task's members carry as the
validation R^2 of their training.

Members that do not predict their own targets carry no law (a null ensemble fitted to
shuffled targets shares a function too); with this R^2 as the member's ``val_r2`` the
member-skill precondition of the consensus stage runs on ingested networks as on trained ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ShapeError
from .hooks import first_tensor
from .recorder import InputFn, _batch, _call
from .store import StudyStore

__all__ = ["check_output_width", "output_skill"]


def _outputs(store: StudyStore, model: Any, stop: int, batch_size: int, input_fn: Any) -> Any:
    """The model's outputs on probe rows ``0:stop``, (row, value) float64."""
    import torch

    inputs = store.model_inputs()
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.inference_mode():
            for start in range(0, stop, batch_size):
                rows = min(batch_size, stop - start)
                y = first_tensor(_call(model, _batch(inputs, start, rows), input_fn))
                out.append(y.detach().to("cpu", torch.float64).reshape(rows, -1).numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out)


def _targets(store: StudyStore) -> tuple[list[str], np.ndarray]:
    names = list(store.target_names())
    probe = store.probe()
    return names, np.column_stack([probe[f"target_{k}"].values for k in names])


def check_output_width(
    store: StudyStore, model: Any, where: str, input_fn: InputFn | None = None
) -> None:
    """Raise one line naming ``where`` when the network's output does not have one value per
    target column (checked on four probe rows; nothing is written)."""
    names = list(store.target_names())
    if not names:
        return
    width = _outputs(store, model, min(4, store.n_samples), 4, input_fn).shape[1]
    if width != len(names):
        raise ShapeError(
            f"{where}: the network gives {width} output value(s) per sample, expected "
            f"{len(names)}: one per probe.target column {names}"
        )


def output_skill(
    store: StudyStore, model: Any, input_fn: InputFn | None = None, batch_size: int = 4096
) -> float | None:
    """R^2 of the network's outputs against the probe's target columns on the test rows (all
    rows when the probe has no test rows), averaged over the columns; None without targets.

    R^2 = 1 - SSE / SST per column (scikit-learn's ``r2_score``), so predicting the mean scores
    0 and a network fitted to shuffled targets scores near 0 on fresh rows.
    """
    from sklearn.metrics import r2_score

    if not store.target_names():
        return None
    names, Y = _targets(store)
    P = _outputs(store, model, store.n_samples, batch_size, input_fn)
    if P.shape[1] != Y.shape[1]:
        raise ShapeError(
            f"network output: {P.shape[1]} value(s) per sample, expected {Y.shape[1]} "
            f"(probe.target {names})"
        )
    test = store.probe()["split"].values == "test"
    rows = test if test.any() else np.ones(len(Y), bool)
    return float(r2_score(Y[rows], P[rows], multioutput="uniform_average"))
