"""Jobs for tests/jobs/runtime/test_pool.py that misbehave with memory. Module-level, so that
real worker processes can import them by name."""

_kept: list[bytes] = []


def hoard(megabytes: int) -> int:
    """Leak: keep ``megabytes`` of touched memory for the life of the process."""
    _kept.append(b"\x01" * (megabytes * 2**20))
    return len(_kept)


def bloat(megabytes: int) -> int:
    """Use ``megabytes`` for the length of the job, then let it go."""
    return len(b"\x01" * (megabytes * 2**20))


def nothing() -> None:
    return None
