"""Small symmetric eigenproblems, run on one BLAS thread.

Small factorisations run slower with several BLAS threads on a loaded machine (see
PERFORMANCE.md): below ``_SMALL`` rows they run under ``threadpool_limits(1)``.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any

import numpy as np
import scipy.linalg
from threadpoolctl import ThreadpoolController

__all__ = ["one_blas_thread", "sym_eigh"]

_SMALL = 2048


@functools.cache
def _controller() -> ThreadpoolController:
    """One controller per process: scanning the loaded libraries is slow under load."""
    return ThreadpoolController()


def one_blas_thread() -> Any:
    """Context manager limiting BLAS to one thread (cheap to enter repeatedly).

    BLAS thread limits are process-wide, so concurrent threads entering and leaving them could
    leave the process limited; outside the main thread this is a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        return contextlib.nullcontext()
    return _controller().limit(limits=1, user_api="blas")


def sym_eigh(M: np.ndarray, top: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of a symmetric matrix in decreasing order of eigenvalue.

    Parameters
    ----------
    M : ndarray (p, p)
        Symmetric matrix.
    top : int, optional
        Return only the ``top`` largest eigenpairs.

    Returns
    -------
    values : ndarray (top,)
    vectors : ndarray (p, top)
    """
    p = M.shape[0]
    subset = None if top is None or top >= p else (p - top, p - 1)
    limit = one_blas_thread() if p <= _SMALL else contextlib.nullcontext()
    with limit:
        vals, vecs = scipy.linalg.eigh(M, subset_by_index=subset, check_finite=False)
    return vals[::-1], vecs[:, ::-1]
