"""Bug zoo of chapter 09: mistakes students really make; each must lose exactly its items."""

from __future__ import annotations

from tools.zoo import Bug

BUGS: list[Bug] = []
