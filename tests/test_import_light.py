import subprocess
import sys


def test_import_loads_no_torch_dask_pysr():
    code = (
        "import sys, ensemble_lens, ensemble_lens.similarity, ensemble_lens.config;"
        "names = ('torch', 'dask', 'distributed', 'pysr', 'juliacall');"
        "heavy = [m for m in names if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_api_resolves():
    import ensemble_lens

    for name in ensemble_lens.__all__:
        assert getattr(ensemble_lens, name) is not None
