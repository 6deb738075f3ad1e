"""How long the POST takes in each delivery mode (lesson steps 1 and 7), and what
syncing Redis's append-only file on every write costs it.

Serves the real app over HTTP (Werkzeug, threaded) and POSTs the form's JSON
twin with `requests`. `now` sends inside the request, with the lesson's
5-second mailer; `later` only stores and enqueues, against a Redis whose
append-only file is synced every second and then on every write (bin/redis's
`appendfsync always`). The throttle is off: this measures the hand-off.

    .venv/bin/python bench/post_latency.py [--quick]
"""

import logging
import statistics
import sys
import threading
import time
from pathlib import Path

import requests
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app import create_app  # noqa: E402
from harness.ports import free_port  # noqa: E402
from harness.redis_server import RedisServer  # noqa: E402
from harness.smtp_sink import SmtpSink  # noqa: E402

RUNS = [("later", "everysec", 200), ("later", "always", 200), ("now", "always", 3)]


def serve(app):
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def measure(mode: str, runs: int, redis_url: str, smtp_port: int) -> list[float]:
    settings = {"REDIS_URL": redis_url, "MAIL_PORT": smtp_port, "WORKIT_DELIVERY": mode}
    app = create_app({**settings, "RATELIMIT_ENABLED": False})
    server = serve(app)
    url = f"http://127.0.0.1:{server.server_port}/api/thoughts"
    timings = []
    with requests.Session() as session:
        for n in range(runs + 5):
            started = time.perf_counter()
            response = session.post(url, json={"email": "ada@example.com", "thought": f"t{n}"})
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            if n >= 5 or mode == "now":  # the first few warm up connections and imports
                timings.append(elapsed)
            if mode == "now" and len(timings) == runs:
                break
    server.shutdown()
    return timings


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    quick = "--quick" in sys.argv[1:]  # tiny runs (tests)
    with SmtpSink(keep=False) as sink:
        for mode, fsync, runs in RUNS:
            runs = min(runs, 2) if quick else runs
            with RedisServer(appendfsync=fsync) as redis:
                timings = measure(mode, runs, redis.url, sink.port)
            print(
                f"POST /api/thoughts delivery={mode:5s} appendfsync={fsync:8s} "
                f"n={len(timings):3d} median={statistics.median(timings) * 1000:8.1f} ms "
                f"max={max(timings) * 1000:8.1f} ms"
            )
        print(f"emails caught during the `now` runs: {sink.count}")


if __name__ == "__main__":
    main()
