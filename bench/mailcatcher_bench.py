"""How fast does mailcatcher take mail, and how fast does its inbox render?

1. Sends N small messages with smtplib, once opening a new connection per message and
   once reusing one connection, to `python -m mailcatcher` and to a bare aiosmtpd sink
   that keeps nothing (harness.smtp_sink; the same aiosmtpd settings, no parsing), in
   alternating rounds, and reports the median messages per second for each and the
   median of each round's ratio.
2. Stores 20,000 messages, opens the inbox in Debian's Chromium and reports how long
   the list takes to appear, how long a search takes to answer (request and render,
   after the box's debounce), and the page's JavaScript heap before and after
   "Clear all".

Run: .venv/bin/python bench/mailcatcher_bench.py [--messages N] [--rounds R] [--inbox-size M]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from statistics import median

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # ahead of the PyPI client's top-level mailcatcher.py
from harness.ports import free_port  # noqa: E402
from harness.smtp_sink import SmtpSink  # noqa: E402

SINK, OURS = "bare aiosmtpd sink", "mailcatcher (in-memory)"


def small_message(n: int) -> bytes:
    message = EmailMessage()
    message["From"] = "bench@example.com"
    message["To"] = "someone@example.com"
    message["Subject"] = f"Benchmark message {n}"
    message.set_content(f"Message number {n}.\n" * 5)
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


# -- the baseline: a bare aiosmtpd sink -----------------------------------------------


def run_sink(port: int) -> None:
    """The harness's sink, keeping nothing, in a process of its own (as the mail
    catcher runs in one) until SIGTERM or SIGINT."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    with SmtpSink(keep=False, port=port, server_hostname=socket.gethostname()):
        signal.sigwait({signal.SIGINT, signal.SIGTERM})


# -- processes ------------------------------------------------------------------------


@contextmanager
def serving(*command: str, ports: list[int]) -> Iterator[None]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, *command], cwd=ROOT, env=env, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while not all(_answers(port) for port in ports):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command} did not start")
            time.sleep(0.05)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def mailcatcher_command(smtp_port: int, http_port: int, *extra: str) -> list[str]:
    return [
        "-m",
        "mailcatcher",
        "--smtp-port",
        str(smtp_port),
        "--http-port",
        str(http_port),
        *extra,
    ]


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


# -- 1. SMTP throughput ---------------------------------------------------------------


def per_message_connections(port: int, messages: list[bytes]) -> float:
    started = time.perf_counter()
    for message in messages:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.sendmail("bench@example.com", ["someone@example.com"], message)
    return len(messages) / (time.perf_counter() - started)


def one_connection(port: int, messages: list[bytes]) -> float:
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for message in messages:
            smtp.sendmail("bench@example.com", ["someone@example.com"], message)
    return len(messages) / (time.perf_counter() - started)


def throughput(count: int, rounds: int) -> None:
    messages = [small_message(n) for n in range(count)]
    sink_port, smtp_port, http_port = _free_ports(3)
    results: dict[str, list[tuple[float, float]]] = {SINK: [], OURS: []}
    with (
        serving(__file__, "--sink", str(sink_port), ports=[sink_port]),
        serving(*mailcatcher_command(smtp_port, http_port), ports=[smtp_port, http_port]),
    ):
        for _ in range(rounds):  # alternating, so both meet the same machine
            results[SINK].append(_both_modes(sink_port, messages))
            results[OURS].append(_both_modes(smtp_port, messages))
            requests.delete(f"http://127.0.0.1:{http_port}/messages", timeout=30)
    medians = {name: [median(m) for m in zip(*runs, strict=True)] for name, runs in results.items()}
    print(
        f"SMTP throughput, {count} messages of {len(messages[0])} bytes each, "
        f"median of {rounds} alternating rounds (messages/s):"
    )
    print(f"  {'':26} {'new connection each':>20} {'one connection':>16}")
    for name, (fresh, reused) in medians.items():
        print(f"  {name:26} {fresh:>20.0f} {reused:>16.0f}")
    # Each round's own ratio (the two ran back to back, on the same machine state),
    # then the median of those: a slow moment of a shared machine hits both sides.
    ratios = [
        [ours / sink for ours, sink in zip(mine, bare, strict=True)]
        for mine, bare in zip(results[OURS], results[SINK], strict=True)
    ]
    fresh, reused = (median(mode) for mode in zip(*ratios, strict=True))
    print(f"  mailcatcher / sink, median of the rounds' ratios: {fresh:.0%} and {reused:.0%}")


def _both_modes(port: int, messages: list[bytes]) -> tuple[float, float]:
    one_connection(port, messages[:20])  # warm up
    return per_message_connections(port, messages), one_connection(port, messages)


def _free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        ports.append(free_port(exclude_ports=ports))
    return ports


# -- 2. inbox rendering ---------------------------------------------------------------


def fill_store(path: Path, count: int) -> None:
    from mailcatcher.mime import parse
    from mailcatcher.store import Store

    store = Store(path)
    source = small_message(0)
    parsed = parse(source)
    for _ in range(count):
        store.add("<bench@example.com>", ["<someone@example.com>"], source, parsed)
    store.close()


def inbox_render(count: int) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("inbox render: skipped (no Chromium on PATH)")
        return
    from playwright.sync_api import sync_playwright

    smtp_port, http_port = _free_ports(2)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "mail.sqlite3"
        fill_store(db, count)
        with (
            serving(
                *mailcatcher_command(smtp_port, http_port, "--db", str(db)),
                ports=[smtp_port, http_port],
            ),
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(
                executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                _measure_page(browser.new_page(), f"http://127.0.0.1:{http_port}", count)
            finally:
                browser.close()


def _measure_page(page, url: str, count: int) -> None:
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("html[data-loaded=true]", timeout=60_000)
        total = time.perf_counter() - started
        painted = float(page.get_attribute("html", "data-painted-ms"))
        timings.append((painted, total, float(page.get_attribute("html", "data-render-ms"))))
        title = page.title()
        assert title == f"MailCatcher ({count})", title
    painted, total, render_ms = min(timings)
    shown = page.locator("#messages tbody tr").count()
    answers = [_search(page, query) for query in ("Benchmark", "message 1", "zzz", "")]
    heap_full = _heap(page)
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Clear all").click()
    _until(lambda: page.title() == "MailCatcher (0)")
    heap_cleared = _heap(page)
    print(f"Inbox with {count} messages (best of 3 loads; the first {shown} rows shown):")
    print(f"  navigation to list painted, by the page's clock: {painted:.0f} ms")
    print(f"  the same, as the test driver saw it: {total * 1000:.0f} ms")
    print(f"  of which building the rows (DOM only): {render_ms:.0f} ms")
    print(
        f"  a search answered (request and render, after the debounce): {median(answers):.0f} ms"
        f" median, {max(answers):.0f} ms worst of {len(answers)}"
    )
    print(
        f"  JavaScript heap: {heap_full:.1f} MB with the list, {heap_cleared:.1f} MB after"
        " Clear all"
    )


def _search(page, query: str) -> float:
    """Type ``query`` into the search box; ms from the request going out to the list
    showing its answer (the page records both)."""
    page.fill("#search", query)
    _until(lambda: page.get_attribute("html", "data-answered") == query)
    return float(page.get_attribute("html", "data-answer-ms"))


def _until(check, timeout: float = 60) -> None:
    """Poll from Python: the page's CSP rightly forbids the eval wait_for_function needs."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the inbox never got there")
        time.sleep(0.01)


def _heap(page) -> float:
    """MB of JavaScript heap in use, after a garbage collection."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("HeapProfiler.collectGarbage")
    used = cdp.send("Runtime.getHeapUsage")["usedSize"]
    cdp.detach()
    return used / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--inbox-size", type=int, default=20_000)
    parser.add_argument("--sink", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (tests)")
    options = parser.parse_args()
    if options.quick:
        options.messages, options.rounds, options.inbox_size = 20, 1, 250
    if options.sink:
        run_sink(options.sink)
        return
    throughput(options.messages, options.rounds)
    inbox_render(options.inbox_size)


if __name__ == "__main__":
    main()
