# Tries the network at import, towards listeners the test itself opened on loopback only:
# TCP to 127.0.0.1 and 127.0.0.2, an HTTP request to the second, and a DNS query sent over UDP
# to a fake resolver on 127.0.0.3. Each attempt would wait up to 20 s if it hung.
import socket
import time
import urllib.request


def timed(label, action):
    began = time.monotonic()
    try:
        action()
        outcome = "CONNECTED"
    except Exception as exc:
        outcome = f"refused ({type(exc).__name__})"
    print(f"hostile-net: {label}: {outcome} in {time.monotonic() - began:.2f} s")


def dns_query():
    # a query for kitprobe.test (a reserved name), sent to the test's own fake resolver
    query = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
             b"\x08kitprobe\x04test\x00\x00\x01\x00\x01")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.settimeout(20)
        probe.sendto(query, ("127.0.0.3", {{UDP_PORT}}))
        probe.recvfrom(512)


timed("tcp1", lambda: socket.create_connection(("127.0.0.1", {{TCP_PORT_1}}), timeout=20))
timed("tcp2", lambda: socket.create_connection(("127.0.0.2", {{TCP_PORT_2}}), timeout=20))
timed("http", lambda: urllib.request.urlopen("http://127.0.0.2:{{TCP_PORT_2}}/", timeout=20))
timed("dns", dns_query)
