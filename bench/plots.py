"""PNG charts of the benchmarks' results, for docs/benchmarks.md.

Each benchmark script takes `--plot PATH` and calls one of these with the numbers
it printed; `make bench` (bench/report.py) asks for them under docs/bench/.
"""

import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402

SIZE = (6.4, 3.6)


def scaling(rates: dict[int, list[float]], delay: float, path: str | Path) -> None:
    """Emails per second against workers, beside perfect scaling from one worker."""
    workers = sorted(rates)
    medians = [statistics.median(rates[n]) for n in workers]
    perfect = [medians[0] * n for n in workers]
    fig, ax = plt.subplots(figsize=SIZE)
    ax.plot(workers, perfect, "--", color="grey", label="perfect scaling")
    ax.plot(workers, medians, "o-", label="measured (median)")
    for n in workers:
        ax.plot([n] * len(rates[n]), rates[n], ".", color="C0", alpha=0.4)
    ax.set(xlabel="workers", ylabel="emails/s", xticks=workers)
    ax.set_title(f"Scaling with workers (provider delay {delay:g} s per email)")
    ax.legend()
    _save(fig, path)


def throughput(rates: dict[str, list[float]], path: str | Path) -> None:
    """Emails per second for each worker setup, slowest at the bottom."""
    labels = sorted(rates, key=lambda label: statistics.median(rates[label]))
    medians = [statistics.median(rates[label]) for label in labels]
    fig, ax = plt.subplots(figsize=(SIZE[0], 0.5 * len(labels) + 1.2))
    bars = ax.barh(labels, medians, color="C0")
    ax.bar_label(bars, fmt="%.0f", padding=3)
    ax.set(xlabel="emails/s (median)")
    ax.set_title("Worker throughput, CPU-bound (no provider delay)")
    _save(fig, path)


def delays(delays_ms: list[float], path: str | Path) -> None:
    """How long each email took from its POST's answer to the mail server: a CDF."""
    ordered = sorted(delays_ms)
    share = [(i + 1) / len(ordered) for i in range(len(ordered))]
    fig, ax = plt.subplots(figsize=SIZE)
    ax.plot(ordered, share)
    ax.set(xlabel="delay from POST to email (ms)", ylabel="share of emails", ylim=(0, 1.01))
    ax.set_title(f"End to end: {len(ordered)} submissions")
    ax.grid(alpha=0.3)
    _save(fig, path)


def _save(fig, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
