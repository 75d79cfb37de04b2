"""The :class:`Task` base class: a known-answer task with ground-truth latent quantities.

A task bundles everything needed to train an ensemble and to check what it learned:

- named probe variables (``input_names``) and a sampler of probe inputs on the training
  distribution and on an extrapolation range (``sample_probe``);
- the ground-truth latent quantities as sympy expressions of those variables (``latents``)
  and their numeric values on a probe (``truth``);
- training data, a model builder, a loss and a validation score;
- the sub-network that maps a probe batch to the latent (``probe_module``) and the name of the
  layer inside it whose output is the latent (``latent_layer``).

Users subclass :class:`Task` (or give ``"module:callable"`` returning an instance) and override
the abstract methods. This module imports numpy/sympy only; torch is imported inside methods.

Conventions
-----------
- Every tensor returned by :meth:`Task.make_data` has the example axis first and the same
  length ``n``; the trainer splits and batches by indexing that axis. ``"target"`` is required.
- ``model(batch)`` takes such a batch dict and returns the prediction compared with
  ``batch["target"]`` by the default :meth:`Task.loss`.
- ``latent_kind`` says how the latent layer relates to ``latents``:

  ``"vector"``
      the latent activations are (up to noise and dead units) an affine image of the latent
      vector. When ``equivariant_vector`` names input variables, the latents turn with that
      input vector under rotations (e.g. a force along ``(dx, dy)``).
  ``"scalar"``
      a single latent known up to an affine map (and a documented gauge, e.g. an additive
      function of the masses for a pair energy).
  ``"monotone"``
      known only up to an invertible (for one latent: monotone) map, as for siamese networks
      that only need the latent to separate trajectories.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import sympy

from ensemble_lens.errors import ShapeError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

    from ensemble_lens.models.spec import ArchSpec, TrainSpec

LatentKind = Literal["vector", "scalar", "monotone"]

__all__ = ["LatentKind", "Task", "latent_penalty", "r2_score"]


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Pooled coefficient of determination over all output columns.

    ``1 - sum((y - yhat)^2) / sum((y - mean_col(y))^2)``: columns are centred separately and
    the residual and total sums of squares are pooled, so columns with more variance weigh more.

    Parameters
    ----------
    y_true, y_pred : np.ndarray
        Arrays of the same shape ``(n, ...)``; all axes after the first are flattened.

    Returns
    -------
    float
        R^2; 0 when the targets are constant.
    """
    y = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    if y.shape != p.shape:
        raise ShapeError(f"r2_score: expected predictions of shape {y.shape}, got {p.shape}")
    sst = float(((y - y.mean(axis=0)) ** 2).sum())
    sse = float(((y - p) ** 2).sum())
    return 0.0 if sst == 0.0 else 1.0 - sse / sst


class Task(abc.ABC):
    """A known-answer task: data, model, loss, score, probe inputs and ground-truth latents.

    Class attributes (set by subclasses)
    ------------------------------------
    name : str
        Registry / display name.
    input_names : tuple of str
        Named probe variables; column order of :meth:`sample_probe`.
    latents : dict of str to sympy.Expr
        Ground-truth latent quantities as expressions of ``sympy.Symbol(name)`` for the
        ``input_names``.
    latent_kind : {"vector", "scalar", "monotone"}
        How the latent layer relates to ``latents`` (see the module docstring).
    equivariant_vector : tuple of str or None
        Input variables forming a vector the latents turn with, e.g. ``("dx", "dy")``.
    latent_layer : str
        Name in ``probe_module(model).named_modules()`` whose output is the latent.
    sr_functions : tuple of str
        Unary primitives symbolic regression should offer beyond ``+ - * /`` and squares,
        e.g. ``("cos",)`` where the law holds angles (default none). A study's
        ``distill.options`` (``functions`` for operon, ``unary_operators`` for PySR) wins.
    target_keys : tuple of str
        Keys of :meth:`make_data` that ``TrainSpec.target_shuffle`` permutes for a null
        ensemble (default ``("target",)``; the siamese tasks permute the partner state ``b``).
    default_arch : ArchSpec
        Architecture that reaches the accuracy target fast.
    default_train : TrainSpec
        Training budget that reaches the accuracy target fast on one CPU thread.

    Examples
    --------
    >>> from ensemble_lens.tasks import get_task
    >>> task = get_task("gravity")
    >>> probe = task.sample_probe(100, seed=0)          # (100, 5) float32
    >>> sorted(task.truth(probe))
    ['fx', 'fy']
    """

    name: ClassVar[str] = "task"
    input_names: tuple[str, ...] = ()
    latents: dict[str, sympy.Expr] = {}  # noqa: RUF012 - replaced per subclass, never mutated
    latent_kind: LatentKind = "vector"
    equivariant_vector: tuple[str, ...] | None = None
    latent_layer: str = "latent"
    sr_functions: tuple[str, ...] = ()
    target_keys: tuple[str, ...] = ("target",)
    default_arch: ArchSpec
    default_train: TrainSpec

    # ------------------------------------------------------------------ probe and truth
    @abc.abstractmethod
    def sample_probe(self, n: int, seed: int, *, extrapolate: bool = False) -> np.ndarray:
        """Sample probe inputs.

        Parameters
        ----------
        n : int
            Number of probe samples.
        seed : int
            Seed of the numpy generator.
        extrapolate : bool
            Sample the task's extrapolation range instead of the training distribution.

        Returns
        -------
        np.ndarray
            ``(n, len(input_names))`` float32, columns in ``input_names`` order.
        """

    def truth(self, probe: np.ndarray) -> dict[str, np.ndarray]:
        """Evaluate the ground-truth latents on probe inputs.

        Parameters
        ----------
        probe : np.ndarray
            ``(n, len(input_names))`` probe inputs.

        Returns
        -------
        dict of str to np.ndarray
            One ``(n,)`` float64 array per entry of ``latents``.
        """
        x = np.asarray(probe, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.input_names):
            raise ShapeError(
                f"task '{self.name}': expected probe of shape (n, {len(self.input_names)}) "
                f"for variables {self.input_names}, got {x.shape}"
            )
        symbols = [sympy.Symbol(v) for v in self.input_names]
        columns = [x[:, k] for k in range(x.shape[1])]
        out = {}
        for key, expr in self.latents.items():
            fn = sympy.lambdify(symbols, expr, modules="numpy")
            out[key] = np.broadcast_to(np.asarray(fn(*columns), dtype=np.float64), (len(x),))
        return {k: np.array(v) for k, v in out.items()}

    # ------------------------------------------------------------------ data and model
    @abc.abstractmethod
    def make_data(self, n: int, seed: int) -> dict[str, torch.Tensor]:
        """Generate ``n`` training examples.

        Returns
        -------
        dict of str to torch.Tensor
            Tensors with the example axis first (length ``n``), including ``"target"``;
            whatever ``model(batch)`` and :meth:`loss` need.
        """

    @abc.abstractmethod
    def build_model(self, arch: ArchSpec, seed: int) -> torch.nn.Module:
        """Build a freshly initialised model (``torch.manual_seed(seed)`` before creating it)."""

    @abc.abstractmethod
    def probe_module(self, model: torch.nn.Module) -> torch.nn.Module:
        """The sub-network mapping a probe batch ``(n, n_vars)`` float32 to the latent.

        Its ``named_modules()`` contain :attr:`latent_layer`.
        """

    # ------------------------------------------------------------------ training signal
    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean squared error of ``model(batch)`` against ``batch["target"]`` plus L1.

        The L1 term is ``model.l1 * mean(|model.latent_activations|)`` when the model defines
        both attributes (the built-in models do; ``ArchSpec.l1`` sets it).
        """
        import torch.nn.functional as F

        pred = model(batch)
        return F.mse_loss(pred, batch["target"]) + latent_penalty(model)

    def score(self, model: torch.nn.Module, data: dict[str, torch.Tensor]) -> dict[str, float]:
        """Validation metrics of a model on held-out data.

        Returns
        -------
        dict
            ``val_r2``: pooled R^2 (:func:`r2_score`) of ``model(data)`` against the target;
            ``val_mse``: mean squared error.
        """
        import torch

        with torch.no_grad():
            pred = model(data).detach().cpu().numpy()
        target = data["target"].detach().cpu().numpy()
        mse = float(np.mean((pred.astype(np.float64) - target) ** 2))
        return {"val_r2": r2_score(target, pred), "val_mse": mse}

    # ------------------------------------------------------------------ helpers
    def probe_symbols(self) -> tuple[sympy.Symbol, ...]:
        """``sympy.Symbol`` for every input name, in ``input_names`` order."""
        return tuple(sympy.Symbol(v) for v in self.input_names)

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable summary (name, variables, latents as strings, kinds)."""
        return {
            "name": self.name,
            "input_names": list(self.input_names),
            "latents": {k: str(v) for k, v in self.latents.items()},
            "latent_kind": self.latent_kind,
            "equivariant_vector": (
                list(self.equivariant_vector) if self.equivariant_vector else None
            ),
            "latent_layer": self.latent_layer,
            "sr_functions": list(self.sr_functions),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, inputs={self.input_names})"


def latent_penalty(model: Any) -> Any:
    """``model.l1 * mean(|model.latent_activations|)``, or 0.0 when the model has neither."""
    l1 = float(getattr(model, "l1", 0.0) or 0.0)
    acts = getattr(model, "latent_activations", None)
    if l1 == 0.0 or acts is None:
        return 0.0
    return l1 * acts.abs().mean()
