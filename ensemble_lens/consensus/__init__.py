"""Which aligned components an ensemble shares beyond chance, with a null and a support count.

Public API: :func:`find_consensus` (returns the "Consensus results" Dataset of
docs/CONTRACTS.md) and :func:`consensus_table` (a short text summary).
"""

from .core import find_consensus
from .table import consensus_table

__all__ = ["consensus_table", "find_consensus"]
