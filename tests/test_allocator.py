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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/clear_refs is Linux")
def test_a_stage_reports_its_own_peak_not_an_earlier_one():
    import torch

    from r1.train.run import peak_memory_mib, reset_peak_memory

    big = torch.ones(256 * 2**20 // 4)  # 256 MiB, touched
    before = peak_memory_mib(torch.device("cpu"))
    del big
    reset_peak_memory(torch.device("cpu"))
    after = peak_memory_mib(torch.device("cpu"))
    assert after < before - 200  # the freed 256 MiB no longer count
