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

__all__ = ["OutputSkill", "check_output_width"]


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
    import torch

    k = min(4, store.n_samples)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            output = first_tensor(_call(model, _batch(store.model_inputs(), 0, k), input_fn))
    finally:
        model.train(was_training)
    width = int(output.reshape(k, -1).shape[1])
    if width != len(names):
        raise ShapeError(
            f"{where}: the network gives {width} output value(s) per sample, expected "
            f"{len(names)}: one per probe.target column {names}"
        )


class OutputSkill:
    """A network's skill on the probe's target columns, from the outputs that recording
    computes anyway (``record_into(..., on_output=skill)``): no second pass over the probe.

    R^2 = 1 - SSE / SST per column (scikit-learn's ``r2_score``) on the test rows (all rows
    when the probe has none), averaged over the columns: predicting the mean scores 0, and a
    network fitted to shuffled targets scores near 0 on fresh rows.
    """

    def __init__(self, store: StudyStore) -> None:
        self.names, self.Y = _targets(store)
        self.test = store.probe()["split"].values == "test"
        self._parts: list[np.ndarray] = []

    def __call__(self, output: Any) -> None:
        import torch

        rows = output.detach().to("cpu", torch.float64)
        self._parts.append(rows.reshape(len(rows), -1).numpy())

    def r2(self) -> float:
        """The score of the outputs seen (every probe row, in order)."""
        from sklearn.metrics import r2_score

        P = np.concatenate(self._parts)
        if P.shape[1] != self.Y.shape[1]:
            raise ShapeError(
                f"network output: {P.shape[1]} value(s) per sample, expected {self.Y.shape[1]} "
                f"(probe.target {self.names})"
            )
        rows = self.test if self.test.any() else np.ones(len(self.Y), bool)
        return float(r2_score(self.Y[rows], P[rows], multioutput="uniform_average"))
