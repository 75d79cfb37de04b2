"""Which aligned components an ensemble shares beyond chance, with a null and a support count.

Public API: :func:`find_consensus` (returns the "Consensus results" Dataset of
docs/CONTRACTS.md), :func:`consensus_table` (a short text summary) and
:func:`validation_weights` (member weights of the consensus scores from validation error),
:func:`member_skill` (whether the members learnt their task at all).
"""

from .core import find_consensus
from .skill import MemberSkill, member_skill
from .table import consensus_table
from .weights import validation_weights

__all__ = [
    "MemberSkill",
    "consensus_table",
    "find_consensus",
    "member_skill",
    "validation_weights",
]
