"""`make bench` cannot rot: every benchmark runs once at a tiny size, through the same
report script, and must complete. (Timing is never asserted: that is the benchmarks'
job, on a quiet machine.)"""

import subprocess
import sys

import pytest

from bench.report import BENCHES, ROOT

pytestmark = pytest.mark.slow


@pytest.mark.timeout(600)
def test_every_benchmark_completes_at_a_tiny_size():
    result = subprocess.run(
        [sys.executable, "bench/report.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for script, *_ in BENCHES:
        assert f"== {script}" in result.stdout
    assert "jobs.pool, 4 workers (the default)" in result.stdout
    assert "PROBLEM" not in result.stdout
