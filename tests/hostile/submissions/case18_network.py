# Tries the network at import: a port the grading machine really listens on, an outside
# address, DNS, and an HTTP request. Each attempt would wait up to 20 s if it hung.
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


timed("loopback", lambda: socket.create_connection(("127.0.0.1", {{LISTEN_PORT}}), timeout=20))
timed("outside", lambda: socket.create_connection(("1.1.1.1", 53), timeout=20))
timed("dns", lambda: socket.getaddrinfo("example.com", 80))
timed("http", lambda: urllib.request.urlopen("http://example.com/", timeout=20))
