"""The vendored real advisory data (tests/data/vulndata; its README says what each file is for)
and a reader for single files of it, for the advisory database and matcher tests."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import yaml

VULNDATA = Path(__file__).resolve().parents[3] / "data" / "vulndata"


def load(relative: str) -> Any:
    """A vendored file, parsed as its extension says."""
    path = VULNDATA / relative
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    if path.suffix in (".yaml", ".yml"):
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    return path.read_text(encoding="utf-8")


def osv_zip(path: Path) -> None:
    """Like osv.dev's <Ecosystem>/all.zip: flat <id>.json files."""
    with zipfile.ZipFile(path, "w") as zf:
        for name in ("GO-2025-3503.json", "GO-2022-1059.json", "GO-2024-2442.json"):
            zf.write(VULNDATA / "osv-go/data/osv" / name, name)
