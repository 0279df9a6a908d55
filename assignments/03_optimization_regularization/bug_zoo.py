"""Bug zoo of chapter 03 (placeholder while the checks are written)."""
from tools.zoo import Bug

BUGS: list[Bug] = []
