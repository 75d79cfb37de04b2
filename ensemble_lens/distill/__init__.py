"""Symbolic distillation: closed-form formulas for consensus components, and how they are judged.

Backends (``operon`` default, ``sparse``, ``pysr``) return a Pareto front; candidates are
canonicalised with sympy (tidy, prune, affine refit, round), the simplest one that is nearly as
good as the best on held-out data is selected, and it is judged by test and extrapolation R^2,
gradient agreement, exact recovery of a known truth, and support across member networks.

pyoperon and pysr are imported only when their backend runs.
"""

from .backends import (
    PYSR_RECIPE,
    BackendName,
    Candidate,
    OperonBackend,
    PySRBackend,
    SRBackend,
    get_backend,
    pareto_front,
)
from .canonical import (
    CanonicalForm,
    canonicalize,
    prune_terms,
    refit_affine,
    round_constants,
    rounded_form,
    snap_number,
    tidy,
)
from .dimensions import Dimensions
from .distill import FormulaResult, Scored, distill_component, distill_components, select
from .judge import (
    Support,
    exact_recovery,
    gradient_agreement,
    knn_gradient,
    r2,
    support,
)
from .sparse import SparseLibraryBackend
from .study import DistillSettings, Extrapolation, LayerDistillation, distill_consensus

__all__ = [
    "PYSR_RECIPE",
    "BackendName",
    "Candidate",
    "CanonicalForm",
    "Dimensions",
    "DistillSettings",
    "Extrapolation",
    "FormulaResult",
    "LayerDistillation",
    "OperonBackend",
    "PySRBackend",
    "SRBackend",
    "Scored",
    "SparseLibraryBackend",
    "Support",
    "canonicalize",
    "distill_component",
    "distill_components",
    "distill_consensus",
    "exact_recovery",
    "get_backend",
    "gradient_agreement",
    "knn_gradient",
    "pareto_front",
    "prune_terms",
    "r2",
    "refit_affine",
    "round_constants",
    "rounded_form",
    "select",
    "snap_number",
    "support",
    "tidy",
]
