"""The figures of an evaluation, written where the report, the server and users read them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_summary(summary: dict[str, Any], out: str | Path) -> Path:
    """OUT/metrics.json (folder created), whose `mean` the report and the server show."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "metrics.json"
    path.write_text(json.dumps(summary, indent=2))
    return path
