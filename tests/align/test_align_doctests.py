"""The runnable examples in the align, consensus and distill docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "ensemble_lens.align.gcca",
    "ensemble_lens.align.procrustes",
    "ensemble_lens.align.equivariant",
    "ensemble_lens.consensus.core",
    "ensemble_lens.consensus.weights",
    "ensemble_lens.distill.reduce",
    "ensemble_lens.distill.canonical",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
