"""harness/ports.py: parallel test processes never pick the same port."""

import socket

from harness import ports


def test_each_test_process_picks_from_a_slice_of_its_own(monkeypatch):
    picked = {}
    for worker in ("", "gw0", "gw1", "gw3"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        picked[worker] = {ports.free_port() for _ in range(40)}
    slices = {worker: {port % ports.SLICES for port in found} for worker, found in picked.items()}
    assert slices == {"": {0}, "gw0": {1}, "gw1": {2}, "gw3": {4}}


def test_a_process_does_not_hand_out_a_port_twice_before_it_is_taken():
    count = ports.REMEMBERED
    assert len({ports.free_port() for _ in range(count)}) == count


def test_the_port_is_free():
    with socket.socket() as server:
        server.bind(("127.0.0.1", ports.free_port()))
