"""Exception and warning hierarchy of ensemble_lens.

Every error derives from :class:`EnsembleLensError` and also from the builtin it resembles, so
``except ValueError`` keeps working for callers that do not know this package.
"""

from __future__ import annotations


class EnsembleLensError(Exception):
    """Root of every error raised by ensemble_lens."""


class ConfigError(EnsembleLensError, ValueError):
    """A study configuration is invalid (the message names the YAML path of the bad key)."""


class StoreError(EnsembleLensError, ValueError):
    """A study store is missing, incompatible, or does not hold what was asked for."""


class StoreLockedError(StoreError):
    """Another run holds the store's write lock (the message names its pid, host, start)."""


class StoreDamagedError(StoreError):
    """Stored chunks are unreadable or missing (the message names model, layer and chunk)."""


class ShapeError(EnsembleLensError, ValueError):
    """Arrays have the wrong shape, mismatched samples, or non-finite values."""


class NonFiniteError(EnsembleLensError, ValueError):
    """Input activations hold NaN or infinite values (the message names the input and count)."""


class UnknownMeasureError(EnsembleLensError, ValueError):
    """A similarity measure's name is unknown or removed (the message lists the known names)."""


class MeasureParameterError(EnsembleLensError, ValueError):
    """A similarity measure's name or options hold an invalid parameter value."""


class IngestError(EnsembleLensError, ValueError):
    """A model or activation file could not be ingested."""


class TaskError(EnsembleLensError, ValueError):
    """A task definition is invalid or cannot be resolved."""


class BackendUnavailableError(EnsembleLensError, ImportError):
    """An optional engine (PySR/Julia, dask-jobqueue) is not installed or cannot start."""


class ExecutionError(EnsembleLensError, RuntimeError):
    """A stage failed while running on an executor."""


class EnsembleLensWarning(UserWarning):
    """Root of every warning issued by ensemble_lens."""


class DroppedUnitsWarning(EnsembleLensWarning):
    """Constant (dead) or duplicate units were dropped before a computation."""


class IllConditionedWarning(EnsembleLensWarning):
    """A computation is statistically meaningless as asked (e.g. CCA with d >= n)."""


class GradientDetachedWarning(EnsembleLensWarning):
    """A torch tensor that requires grad was detached (similarity values carry no gradient)."""
