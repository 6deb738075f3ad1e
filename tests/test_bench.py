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


def test_a_trick_is_measured_against_shipped_right_before_and_right_after_it():
    """Not against one `shipped` run per round, which may be a minute away from it."""
    from bench.tricks import Variant, _between, _gains
    from bench.workers import Run

    before = Run(jobs=100, seconds=1.0, cpu_workers=0.8, cpu_redis=0.2, cpu_sink=0.0)
    after = Run(jobs=100, seconds=4.0, cpu_workers=0.8, cpu_redis=0.2, cpu_sink=0.0)
    between = _between(before, after)
    assert between.rate == pytest.approx(50.0)  # sqrt(100 * 25)
    assert between.cpu_ms_per_job()[:2] == pytest.approx((8.0, 2.0))
    taken_out = Variant("without x", "x", kept=True)
    assert _gains(taken_out, [40.0], [between.rate]) == pytest.approx([0.25])
    put_back = Variant("with y", "y", kept=False)
    assert _gains(put_back, [60.0], [between.rate]) == pytest.approx([0.2])


@pytest.mark.timeout(120)
def test_then_and_now_runs_an_earlier_commit_beside_this_tree_and_cleans_up():
    result = subprocess.run(
        [sys.executable, "bench/then_and_now.py", "HEAD", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "median POST/bare: then " in result.stdout
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True)
    assert b"then-and-now-" not in worktrees.stdout


def test_then_and_now_reports_each_side_against_its_own_bare_page():
    from bench.then_and_now import report

    runs = [
        {"then": {"bare": 4000, "post": 1200}, "now": {"bare": 3000, "post": 1050}},
        {"then": {"bare": 5000, "post": 1000}, "now": {"bare": 4000, "post": 1000}},
        {"then": {"bare": 4000, "post": 1000}, "now": {"bare": 4000, "post": 1100}},
    ]
    lines = report(runs)
    assert lines[1].split()[-4:] == ["0.30", "3000", "1050", "0.35"]
    assert "median POST/bare: then 0.25, now 0.28" in lines
    assert "median now/then, bare: 0.80" in lines
    assert "median now/then, post: 1.00" in lines
