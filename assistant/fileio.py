"""Writing a file so that readers see either the old content or the new one, never a half-written file."""

from __future__ import annotations

from pathlib import Path


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) next to ``path`` as ``<name>.part``, then rename it over ``path``.

    The rename is atomic on one filesystem, so a crash leaves the previous file (and at worst a stray .part)."""
    tmp = path.with_name(path.name + ".part")
    if isinstance(data, str):
        tmp.write_text(data, encoding="utf-8")
    else:
        tmp.write_bytes(data)
    tmp.replace(path)
