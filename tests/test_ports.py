"""fieldnotes.ports: a free TCP port on a given host."""

import socket

from fieldnotes.ports import free_port


def test_a_free_port_can_be_bound_on_its_host():
    port = free_port()
    assert 1024 <= port < 65536
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
