"""The dependency direction of the architecture (README, Architecture): each layer imports only
from the layers below it. Checked on the source with `ast`, as import-linter's layers contract would."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "dockyard"

# package -> the dockyard packages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "storage": {"core"},
    "scan": {"core", "config"},  # the scanner: inventories, the advisory database, matching, SBOMs (no registry state)
    "meta": {"core"},
    "auth": {"core", "meta"},
    "outbound": {"core"},  # requests made for users (webhooks): the address guard and the pinned HTTP client
    "builder": {"core"},  # the build child and its process management (no registry state, no settings)
    "registry": {"core", "meta", "storage", "config", "scan", "outbound", "builder"},
    "management": {"core", "meta", "auth", "registry", "config", "scan"},
    "api": {"core", "meta", "auth", "registry", "management", "config", "storage", "scan"},
    "web": {"core", "meta", "auth", "management", "config", "api", "scan"},  # the console: services, never the HTTP API
    "jobs": {"core", "meta", "registry", "management", "config"},  # the worker and the handlers over the services
}
# Only api/ (and app/cli) serve HTTP, and only outbound/ makes requests for users (checked, pinned).
NO_HTTP = {"core", "storage", "meta", "auth", "registry", "management", "jobs", "builder"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_layers_import_only_downwards() -> None:
    problems = []
    for package, allowed in ALLOWED.items():
        for path in (SRC / package).rglob("*.py"):
            for name in _imports(path):
                if name.startswith("dockyard."):
                    target = name.split(".")[1]
                    if target != package and target not in allowed:
                        problems.append(f"{path.relative_to(SRC)} imports {name}")
                if package in NO_HTTP and name.split(".")[0] in {"starlette", "granian", "uvicorn", "httpx"}:
                    problems.append(f"{path.relative_to(SRC)} imports {name} (HTTP belongs in api/)")
    assert not problems, "\n".join(problems)


def test_requests_go_out_through_outbound_only() -> None:
    """A request to a URL a user chose goes through outbound/ (address guard, pinning, limits); only
    api/ (the CLI's client of /api/v1) and scan/ (the advisory feeds an administrator configured)
    import an HTTP client besides it."""
    may = {"api", "outbound", "scan"}
    problems = [f"{path.relative_to(SRC)} imports {name}" for path in SRC.rglob("*.py")
                if len(path.relative_to(SRC).parts) > 1 and path.relative_to(SRC).parts[0] not in may
                for name in _imports(path) if name.split(".")[0] in {"httpx", "httpcore", "urllib3", "requests", "aiohttp"}
                or name == "urllib.request"]
    assert not problems, "\n".join(problems)


def test_sql_only_in_meta() -> None:
    """Queries live in meta/ (the stores); every other layer calls them."""
    problems = [f"{path.relative_to(SRC)} imports {name}" for path in SRC.rglob("*.py")
                if "meta" not in path.relative_to(SRC).parts[:1]
                for name in _imports(path) if name.split(".")[0] == "sqlalchemy"]
    assert not problems, "\n".join(problems)


def test_the_visibility_rule_is_written_once() -> None:
    """Is a repository public? Its own setting, else its namespace's default: core.access.is_public,
    and nowhere else."""
    rule = ('== "public"', "== 'public'")
    sites = [str(path.relative_to(SRC)) for path in SRC.rglob("*.py")
             if any(text in path.read_text() for text in rule)]
    assert sites == ["core/access.py"], sites
