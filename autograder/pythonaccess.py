"""Makes the Python installation readable by the sandbox user, and nothing else of root's.

The child imports torch as root, then drops to the sandbox user and runs the submission, which
may import any module of the standard library, numpy or torch that was not loaded yet
(``secrets`` for ``numpy.random.default_rng``, ``fractions``, ``torch.testing`` ...). Where the
interpreter lives under a folder other users cannot enter (uv's default
``/root/.local/share/uv/python``, pyenv's ``/root/.pyenv``; ``/root`` is mode 0700), those
imports fail after the drop. The grader zip's ``setup.sh`` installs Python where everyone may
read it, so on Gradescope nothing needs doing; for ``make grade`` as root on such a machine the
judge grants the sandbox user, and only it, the right to *pass through* each blocking folder
(a POSIX ACL entry ``user:<uid>:--x``: it cannot list the folder, and reaches only what is
itself readable by others) for the duration of one grading, then removes the entry.

What is checked is what the child's ``sys.path`` holds: the standard library, its extension
modules and the environment's site-packages. The kit's own child-side modules are imported
before the drop (``/autograder/source`` is locked to root), so they need no access.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import struct
import sysconfig
import tempfile
from pathlib import Path

ACL_XATTR = "system.posix_acl_access"
ACL_VERSION = 2
USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
UNDEFINED_ID = 0xFFFFFFFF
EXECUTE = 1


def python_paths() -> list[str]:
    """Folders the child imports from: stdlib, its extension modules, site-packages."""
    paths = sysconfig.get_paths()
    found = [paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")]
    found.append(os.path.join(paths["platstdlib"], "lib-dynload"))
    return sorted({os.path.realpath(path) for path in found if os.path.isdir(path)})


def blocked_folders(uid: int, gid: int, paths: list[str]) -> tuple[list[str], list[str]]:
    """(folders the user cannot pass through on the way to ``paths``, paths it cannot read
    although it reaches them), found by a forked process that drops to the user and tries."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked probe
        code = 1
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            blocked, unreadable = [], []
            for path in paths:
                current = "/"
                for part in Path(path).parts[1:]:
                    if not os.access(current, os.X_OK):
                        blocked.append(current)
                        break
                    current = os.path.join(current, part)
                else:
                    if not os.access(path, os.R_OK | os.X_OK):
                        unreadable.append(path)
            os.write(write_fd, json.dumps([sorted(set(blocked)), unreadable]).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as handle:
        data = handle.read()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise OSError("the access probe failed")
    blocked, unreadable = json.loads(data)
    return blocked, unreadable


def _read_acl(path: str) -> list[tuple[int, int, int]]:
    try:
        raw = os.getxattr(path, ACL_XATTR, follow_symlinks=False)
    except OSError:
        raw = b""
    if len(raw) < 4 or struct.unpack_from("<I", raw)[0] != ACL_VERSION:
        mode = os.lstat(path).st_mode
        return [
            (USER_OBJ, (mode >> 6) & 7, UNDEFINED_ID),
            (GROUP_OBJ, (mode >> 3) & 7, UNDEFINED_ID),
            (OTHER, mode & 7, UNDEFINED_ID),
        ]
    return [struct.unpack_from("<HHI", raw, offset) for offset in range(4, len(raw), 8)]


def _write_acl(path: str, entries: list[tuple[int, int, int]]) -> None:
    named = [entry for entry in entries if entry[0] in (USER, GROUP)]
    if not named:  # back to a plain mode: drop the ACL, restore the group bits
        group = next(perm for tag, perm, _ in entries if tag == GROUP_OBJ)
        with contextlib.suppress(OSError):
            os.removexattr(path, ACL_XATTR, follow_symlinks=False)
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        os.chmod(path, (mode & ~0o070) | (group << 3))
        return
    entries = [entry for entry in entries if entry[0] != MASK]
    mask = 0
    for tag, perm, _ in entries:
        if tag in (GROUP_OBJ, USER, GROUP):
            mask |= perm
    entries.append((MASK, mask, UNDEFINED_ID))
    entries.sort(key=lambda entry: (entry[0], entry[2]))
    raw = struct.pack("<I", ACL_VERSION) + b"".join(
        struct.pack("<HHI", *entry) for entry in entries
    )
    os.setxattr(path, ACL_XATTR, raw, follow_symlinks=False)


@contextlib.contextmanager
def _acl_lock():
    """Gradings with different sandbox users may edit the same folder's ACL: one at a time."""
    folder = "/run/lock" if os.path.isdir("/run/lock") else tempfile.gettempdir()
    fd = os.open(
        os.path.join(folder, "kit-sandbox-acl.lock"),
        os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
        0o600,
    )
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def grant_traverse(uid: int, folders: list[str]) -> list[str]:
    """Adds ``user:<uid>:--x`` to each folder's ACL; returns the folders changed."""
    granted = []
    with _acl_lock():
        for folder in folders:
            entries = [
                entry for entry in _read_acl(folder) if not (entry[0] == USER and entry[2] == uid)
            ]
            _write_acl(folder, entries + [(USER, EXECUTE, uid)])
            granted.append(folder)
    return granted


def revoke_traverse(uid: int, folders: list[str]) -> None:
    """Removes what :func:`grant_traverse` added (other users' entries stay)."""
    with _acl_lock():
        for folder in folders:
            with contextlib.suppress(OSError):
                _write_acl(
                    folder,
                    [
                        entry
                        for entry in _read_acl(folder)
                        if not (entry[0] == USER and entry[2] == uid)
                    ],
                )


@contextlib.contextmanager
def python_readable_by(uid: int, gid: int):
    """Yields a one-line report; while inside, the sandbox user can read the child's imports."""
    paths = python_paths()
    granted: list[str] = []
    try:
        blocked, unreadable = blocked_folders(uid, gid, paths)
        problem = ""
        if blocked:
            try:
                granted = grant_traverse(uid, blocked)
                blocked, unreadable = blocked_folders(uid, gid, paths)
            except OSError as exc:
                problem = f" (could not grant access: {exc})"
        if blocked or unreadable:
            report = f"NOT readable by the sandbox user: {', '.join(blocked + unreadable)}{problem}"
        elif granted:
            report = (
                f"readable: the sandbox user may pass through {', '.join(granted)} "
                f"during grading (ACL entry, removed afterwards)"
            )
        else:
            report = "readable by the sandbox user"
    except OSError as exc:
        report = f"not verified ({exc})"
    try:
        yield report
    finally:
        if granted:
            revoke_traverse(uid, granted)
