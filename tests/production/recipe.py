"""The production settings of docs/deployment.md, as code.

The multi-process and failure tests configure their server processes with
the very block the deployment docs show (the ``python`` block starting with
:data:`MARKER`), so the docs cannot drift from what is tested.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
MARKER = "# settings.py: production topology"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def recipe_source() -> str:
    """The source of the production settings block of docs/deployment.md."""
    blocks = [b for b in _BLOCK.findall(DOCS.read_text("utf-8")) if b.startswith(MARKER)]
    if len(blocks) != 1:
        raise LookupError(f"{DOCS} must have one python block starting with {MARKER!r}")
    return blocks[0]


def production_settings() -> dict[str, Any]:
    """The settings the block defines (it reads ``REDIS_URL`` and ``DATABASE_URL``)."""
    namespace: dict[str, Any] = {"__name__": "deployment_recipe"}
    exec(compile(recipe_source(), str(DOCS), "exec"), namespace)
    return {name: value for name, value in namespace.items() if name.isupper()}
