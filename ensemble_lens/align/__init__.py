"""Multi-network alignment into one shared frame.

- :class:`MultisetCCA` (MAXVAR generalized CCA) and :class:`GeneralizedProcrustes`:
  scikit-learn style aligners on per-network PCA truncations, fitted from shared moments.
- Unit-level tools: :func:`match_units_across` (Hungarian matching), :func:`universality_scores`
  (best-partner correlation over a random-rotation baseline), :func:`cluster_units`.
- :func:`input_basis_map`: map an aligned subspace of a vector latent onto the input vector
  basis it turns with.
"""

from .equivariant import InputBasisMap, input_basis_map
from .gcca import MultisetCCA
from .pca import NetworkPCA
from .procrustes import GeneralizedProcrustes
from .units import (
    UnitClusters,
    UnitMatching,
    Universality,
    cluster_units,
    match_units_across,
    universality_scores,
)

__all__ = [
    "GeneralizedProcrustes",
    "InputBasisMap",
    "MultisetCCA",
    "NetworkPCA",
    "UnitClusters",
    "UnitMatching",
    "Universality",
    "cluster_units",
    "input_basis_map",
    "match_units_across",
    "universality_scores",
]
