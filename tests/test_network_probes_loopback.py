"""Network probes in the test suite target loopback only (issue 20).

A test that probes the sandbox's network isolation sends traffic out whenever the isolation is
broken or degraded, so every probe must target a 127.0.0.0/8 address on which the test itself
listens (``tests/loopback.py``). This scan keeps it that way: it fails on any literal IPv4
address outside 127.0.0.0/8 anywhere under ``tests/``, and on any host name (or URL with a
host other than a 127.x.y.z address) given to a network call.
"""
from __future__ import annotations

import ast
import ipaddress
import json
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
TEXT_SUFFIXES = {".py", ".ipynb", ".json", ".txt", ".md", ".sh", ".cfg", ".toml", ".yml"}
IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\[?([^/\s:'\"\]]+)")
HOST_NAME = re.compile(r"^(localhost|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)\.?$")
# Calls that send traffic or resolve names (socket, urllib, http.client, ftplib, smtplib...).
NETWORK_CALLS = {"create_connection", "connect", "connect_ex", "sendto", "sendmsg",
                 "getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr",
                 "getnameinfo", "getfqdn", "urlopen", "urlretrieve", "Request",
                 "HTTPConnection", "HTTPSConnection", "FTP", "SMTP", "SMTP_SSL", "Telnet",
                 "open_connection", "create_datagram_endpoint"}


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network("127.0.0.0/8")
    except ValueError:
        return False


def outside_addresses(text: str) -> list[str]:
    """Literal IPv4 addresses outside 127.0.0.0/8, and URLs whose host is not one inside."""
    found = []
    for match in IPV4.finditer(text):
        try:
            ipaddress.ip_address(match.group())
        except ValueError:
            continue  # not an address (e.g. 999.1.2.3)
        if not is_loopback(match.group()):
            found.append(match.group())
    found += [match.group() for match in URL.finditer(text) if not is_loopback(match.group(1))]
    return found


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def network_targets(source: str) -> list[str]:
    """Host names and non-loopback URLs given to network calls in Python source."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or _call_name(node) not in NETWORK_CALLS:
            continue
        for argument in [*node.args, *(keyword.value for keyword in node.keywords)]:
            for leaf in ast.walk(argument):
                if not isinstance(leaf, ast.Constant) or not isinstance(leaf.value, str):
                    continue
                value = leaf.value.strip()
                url = URL.match(value)
                host = url.group(1) if url else value
                if (url or HOST_NAME.match(value)) and not is_loopback(host):
                    found.append(f"{_call_name(node)}({value!r})")
    return found


def python_sources(path: Path, text: str) -> list[str]:
    if path.suffix == ".py":
        return [text]
    if path.suffix == ".ipynb":
        try:
            cells = json.loads(text).get("cells", [])
        except (ValueError, AttributeError):
            return []
        return ["".join(cell.get("source", "")) if isinstance(cell.get("source"), list)
                else str(cell.get("source", "")) for cell in cells
                if isinstance(cell, dict) and cell.get("cell_type") == "code"]
    return []


def scan(root: Path) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix not in TEXT_SUFFIXES or "__pycache__" in path.parts:
            continue
        text = path.read_text(errors="replace")
        where = path.relative_to(root)
        problems += [f"{where}: address {hit}" for hit in outside_addresses(text)]
        for source in python_sources(path, text):
            problems += [f"{where}: network target {hit}" for hit in network_targets(source)]
    return problems


def test_no_test_sends_traffic_outside_loopback():
    problems = scan(TESTS)
    assert not problems, "network probes must target 127.0.0.0/8 listeners only:\n" + \
        "\n".join(problems)


def test_the_scan_catches_what_it_must(tmp_path):
    # Built from pieces so that this file itself holds no such literal.
    outside_ip = ".".join(["1"] * 4)
    name = "example" + "." + "com"
    web = "http" + ":/" + "/"
    (tmp_path / "probe.py").write_text(
        "import socket, urllib.request\n"
        f"socket.create_connection(({outside_ip!r}, 53))\n"
        f"socket.getaddrinfo({name!r}, 80)\n"
        f"urllib.request.urlopen('{web}{name}/')\n"
        "socket.create_connection(('127.0.0.2', 8080))\n"
        f"urllib.request.urlopen('{web}127.0.0.1:8080/')\n"
        "sock.connect('/run/some.sock')\n")
    problems = scan(tmp_path)
    assert any(outside_ip in problem for problem in problems), problems
    assert sum("network target" in p and name in p for p in problems) == 2, problems
    assert sum(f"address {web}{name}" in p for p in problems) == 1, problems
    assert not [p for p in problems if "127.0.0." in p or "/run/" in p], problems
