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
    assert "jobs.runtime.pool, 4 workers (the default)" in result.stdout
    assert "Celery prefork, acks_late" in result.stdout
    assert "every email arrived exactly once" in result.stdout
    assert "PROBLEM" not in result.stdout


def test_the_end_to_end_bench_refuses_a_run_that_was_not_exactly_once():
    from bench.end_to_end import summarise

    answered = {"a@example.com": 1.0, "b@example.com": 1.0}
    once = {"a@example.com": [1.2], "b@example.com": [1.3]}
    assert summarise(0.0, answered, once, 2)["p50"] == pytest.approx(300)
    with pytest.raises(RuntimeError, match="1 got duplicates"):
        summarise(0.0, answered, {**once, "b@example.com": [1.3, 1.4]}, 2)
    with pytest.raises(RuntimeError, match="1 got none"):
        summarise(0.0, answered, {"a@example.com": [1.2]}, 2)


def test_the_charts_are_drawn(tmp_path):
    from bench import plots

    plots.scaling({1: [1.0], 2: [1.9, 2.0]}, 1.0, tmp_path / "scaling.png")
    plots.throughput({"bare": [800.0], "pool": [120.0, 130.0]}, tmp_path / "rates.png")
    plots.delays([10.0, 20.0, 30.0], tmp_path / "delays.png")
    for name in ("scaling.png", "rates.png", "delays.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
