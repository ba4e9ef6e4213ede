import pytest

from .test_faults import _final, _fit_subprocess


@pytest.fixture(scope="session")
def reference_dir(tmp_path_factory):
    """The folder of the uninterrupted run of ``tiny.yaml`` (its logs and checkpoints)."""
    d = tmp_path_factory.mktemp("reference")
    out = _fit_subprocess(d)
    assert out.returncode == 0, out.stderr[-2000:]
    return d


@pytest.fixture(scope="session")
def reference(reference_dir):
    """The uninterrupted run of ``tiny.yaml``: weights, validation rows, global step."""
    return _final(reference_dir)
