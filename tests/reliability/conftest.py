import pytest

from .test_faults import _final, _fit_subprocess


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """The uninterrupted run of ``tiny.yaml``: weights, validation rows, global step."""
    d = tmp_path_factory.mktemp("reference")
    out = _fit_subprocess(d)
    assert out.returncode == 0, out.stderr[-2000:]
    return _final(d)
