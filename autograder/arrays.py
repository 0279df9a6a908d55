"""Names of the output files the child writes and the judge reads, without importing torch.

Kept apart from ``checks.py`` (which imports torch, and re-exports this function) so that the
judge never loads torch: that saves about 2.5 s and 200 MB per grading, and keeps the judge
small beside a child allowed 640 MiB inside Gradescope's default 768 MB container.
"""

from __future__ import annotations


def array_file_name(check_index: int, case_index: int, output_name: str) -> str:
    """File name under which one output is saved; the judge builds it itself, never reads it."""
    safe = "".join(ch if ch.isalnum() or ch == "_" else "-" for ch in output_name)
    return f"c{check_index:03d}_k{case_index:03d}_{safe}.npy"
