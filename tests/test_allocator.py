"""r1.allocator: the malloc settings take effect on glibc and can be opted out of."""

import sys

import pytest

from r1 import allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_tune_applies_on_glibc():
    assert allocator.tune() is True


def test_opt_out_with_the_environment(monkeypatch):
    monkeypatch.setenv("R1_MALLOC_TUNING", "0")
    assert allocator.tune() is False
