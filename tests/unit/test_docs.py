"""The README documents every setting and starts with the two quick-start commands.

The settings table is generated from the pydantic model, so it cannot drift from the code:

    .venv/bin/python -m tests.unit.test_docs      # prints the table to paste into README.md

(as datasette's test_docs.py does for its settings).
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, SecretStr

from dockyard.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
ENV_PREFIX = "DOCKYARD_"


@dataclass(frozen=True)
class SettingDoc:
    dotted: str
    env: str
    default: str
    meaning: str


def _render_default(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return str(value) if value.is_absolute() else f"./{value}"
    if isinstance(value, SecretStr):
        return "(secret)"
    return str(value)


def iter_settings(model: type[BaseModel] = Settings, prefix: tuple[str, ...] = ()) -> Iterator[SettingDoc]:
    """Every leaf setting of the model, depth first, in declaration order."""
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from iter_settings(annotation, path)
            continue
        meaning = field.description or ""
        if typing.get_origin(annotation) is typing.Literal:
            meaning += " One of: " + ", ".join(f"`{choice}`" for choice in typing.get_args(annotation)) + "."
        yield SettingDoc(
            dotted=".".join(path),
            env=ENV_PREFIX + "__".join(p.upper() for p in path),
            default=_render_default(field.get_default(call_default_factory=True)),
            meaning=meaning,
        )


def settings_table() -> str:
    lines = ["| Setting | Environment variable | Default | Meaning |", "|---|---|---|---|"]
    for s in iter_settings():
        meaning = s.meaning.replace("|", r"\|")
        lines.append(f"| `{s.dotted}` | `{s.env}` | `{s.default}` | {meaning} |")
    return "\n".join(lines)


def _readme_rows() -> dict[str, tuple[str, str]]:
    """README table rows keyed by setting: (env var, default), backticks stripped."""
    rows: dict[str, tuple[str, str]] = {}
    for line in README.read_text().splitlines():
        m = re.match(r"^\|\s*`([a-z0-9_.]+)`\s*\|\s*`(DOCKYARD_[A-Z0-9_]+)`\s*\|\s*`([^`]*)`\s*\|", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3))
    return rows


def test_walk_finds_nested_settings() -> None:
    names = {s.dotted for s in iter_settings()}
    assert {"data_dir", "server.listen", "auth.token_ttl_seconds", "database.url"} <= names
    assert "server" not in names  # sections are walked into, not listed


def test_every_setting_is_in_the_readme_table() -> None:
    rows = _readme_rows()
    missing = [s.dotted for s in iter_settings() if s.dotted not in rows]
    assert not missing, (
        f"settings missing from README.md's settings table: {missing}\n"
        "regenerate it with: .venv/bin/python -m tests.unit.test_docs"
    )


def test_readme_env_names_and_defaults_match_the_model() -> None:
    rows = _readme_rows()
    wrong = [f"{s.dotted}: README says {rows[s.dotted]}, model says {(s.env, s.default)}"
             for s in iter_settings() if s.dotted in rows and rows[s.dotted] != (s.env, s.default)]
    assert not wrong, "\n".join(wrong)


def test_readme_table_has_no_settings_that_do_not_exist() -> None:
    known = {s.dotted for s in iter_settings()}
    extra = sorted(set(_readme_rows()) - known)
    assert not extra, f"README.md documents settings that do not exist: {extra}"


def test_readme_starts_with_the_two_command_quick_start() -> None:
    text = README.read_text()
    headings = re.findall(r"^#{1,6} .*$", text, re.M)
    first_section = next(h for h in headings if h.startswith("## "))
    assert first_section == "## Quick start", f"the first section is {first_section!r}"
    body = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:sh|bash|console)?\n(.*?)```", body, re.S)
    assert blocks, "the quick start has no code block"
    commands = [line.strip() for line in blocks[0].splitlines() if line.strip() and not line.strip().startswith("#")]
    assert commands == ["./scripts/serve", "./scripts/test"]


def test_readme_storage_layout_is_the_one_in_layout_py() -> None:
    """The README shows the data-directory tree documented once, in storage/layout.py."""
    import textwrap

    from dockyard.storage import layout

    assert layout.__doc__
    tree = textwrap.dedent(next(p for p in layout.__doc__.split("\n\n") if p.lstrip().startswith("DATA/"))).strip()
    assert tree in README.read_text(), "copy the tree from src/dockyard/storage/layout.py into README.md"


def test_every_dependency_is_explained() -> None:
    """Each runtime and test dependency in pyproject.toml has a row in the README's Dependencies table."""
    import tomllib

    project = tomllib.loads((README.parent / "pyproject.toml").read_text())["project"]
    specs = [*project["dependencies"], *(s for group in project["optional-dependencies"].values() for s in group)]
    names = {re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0].lower() for spec in specs}
    section = README.read_text().split("## Dependencies", 1)[1].split("\n## ", 1)[0]
    explained = {n.lower() for n in re.findall(r"`([A-Za-z0-9_.-]+)(?:\[[a-z,]+\])?`", section)}
    missing = sorted(names - explained)
    assert not missing, f"dependencies not explained in README.md's Dependencies section: {missing}"


def test_quick_start_scripts_exist_and_ci_runs_the_test_command() -> None:
    root = README.parent
    for script in ("scripts/serve", "scripts/test", ".ci/run"):
        path = root / script
        assert path.is_file() and path.stat().st_mode & 0o111, f"{script} is missing or not executable"
    assert "scripts/test" in (root / ".ci/run").read_text()


if __name__ == "__main__":
    print(settings_table())
