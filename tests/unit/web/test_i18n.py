"""The console's Simplified Chinese translation is complete and well-formed, and dockyard.web.i18n
negotiates languages and formats sizes as the console shows them.

When a test here fails after a template or view changed, run `scripts/i18n` (it merges the new strings
into the .po file) and translate the new empty msgstr entries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from jinja2 import Environment

import dockyard.web
from dockyard.core.access import ROLES
from dockyard.core.scopes import ALL_REPOSITORY_ACTIONS
from dockyard.web.addresses import NETWORK_LABELS
from dockyard.web.i18n import Translator, human_size, negotiate

WEB = Path(dockyard.web.__file__).resolve().parent
PO = WEB / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po"
METHOD_MAP = [("**.py", "python"), ("templates/**.html", "jinja2")]  # as babel.cfg
# Templates call `_("…")`; views call `ctx._("…")` or `t.gettext("…")` (`pybabel extract`, which
# scripts/i18n runs, also looks for gettext and N_ by default).
KEYWORDS = {"_": None, "gettext": None, "N_": None}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdr]")
# Shown through `_(variable)`, which no extractor can see: role names, robot permissions, networks.
DYNAMIC = (*ROLES, *ALL_REPOSITORY_ACTIONS, *NETWORK_LABELS.values())
FIX = "run scripts/i18n, then translate the empty msgstr entries in " + str(PO)


def _read_po():
    with PO.open("rb") as fh:
        return read_po(fh)


def _extracted() -> dict[str, list[str]]:
    """msgid -> where it is used, for every literal string the console's code marks for translation."""
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            str(WEB), METHOD_MAP, keywords=KEYWORDS, comment_tags=(), strip_comment_tags=True):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


def _translations() -> Iterator[tuple[str, str]]:
    for m in _read_po():
        if m.id and m.string:
            yield str(m.id), str(m.string)


def test_extraction_finds_the_console_strings() -> None:
    found = _extracted()
    assert len(found) > 100
    assert "Namespaces" in found  # templates: _("…")
    assert "Wrong user name or password." in found  # views: ctx._("…")
    assert "just now" in found  # i18n.py: self.gettext("…")


def test_every_console_string_has_a_chinese_translation() -> None:
    translated = dict(_translations())
    missing = {msgid: where for msgid, where in _extracted().items() if not translated.get(msgid, "").strip()}
    assert not missing, f"{len(missing)} console strings have no zh_CN translation ({FIX}):\n" + "\n".join(
        f"  {msgid!r}  ({', '.join(where[:3])})" for msgid, where in sorted(missing.items()))


def test_names_shown_through_variables_are_translated() -> None:
    translated = dict(_translations())
    missing = [name for name in DYNAMIC if not translated.get(name, "").strip()]
    assert not missing, (
        f"no zh_CN translation for {missing}: the templates show these through _(variable), which "
        f"scripts/i18n cannot extract. Mark them for extraction in src/dockyard/web (for example "
        f"N_(\"owner\") in a .py file, or _(\"owner\") in a template), then {FIX}")


def test_every_entry_of_the_po_file_is_translated() -> None:
    empty = [str(m.id) for m in _read_po() if m.id and not str(m.string).strip()]
    assert not empty, f"{len(empty)} entries have an empty msgstr ({FIX}):\n" + "\n".join(f"  {e!r}" for e in empty)


def test_translations_keep_the_placeholders() -> None:
    wrong = []
    for msgid, msgstr in _translations():
        names = sorted(PLACEHOLDER.findall(msgid))
        if sorted(PLACEHOLDER.findall(msgstr)) != names:
            wrong.append(f"  {msgid!r} -> {msgstr!r}")
            continue
        if names:  # formats as the console does (Translator.gettext, Jinja's |format): no stray '%'
            try:
                msgstr % {name: "x" for name in names}
            except (KeyError, ValueError, TypeError) as exc:
                wrong.append(f"  {msgid!r} -> {msgstr!r}: {exc}")
    assert not wrong, "translations whose %(name)s placeholders differ from the msgid's:\n" + "\n".join(wrong)


def test_po_file_has_no_obsolete_or_fuzzy_entries() -> None:
    po = _read_po()
    obsolete = sorted(str(m) for m in po.obsolete)
    fuzzy = sorted(str(m.id) for m in po if m.id and m.fuzzy)
    assert not obsolete, (f"obsolete (#~) entries in {PO.name}: {obsolete}. Delete them, or, if they are names "
                          f"shown through _(variable), mark them for extraction in the code")
    assert not fuzzy, f"fuzzy entries in {PO.name} (Babel ignores them at runtime): {fuzzy}"


@pytest.mark.parametrize(("cookie", "accept_language", "default", "expected"), [
    (None, "zh-CN,zh;q=0.9", None, "zh-CN"),
    (None, "zh", None, "zh-CN"),
    (None, "en-US", None, "en"),
    (None, "en-US,en;q=0.9,zh-CN;q=0.8", None, "en"),
    (None, "fr-FR", None, "en"),
    (None, None, None, "en"),
    ("en", "zh-CN,zh;q=0.9", None, "en"),  # the user's pick (cookie) wins
    ("zh-CN", "en-US", "en", "zh-CN"),
    (None, "zh-CN,zh;q=0.9", "en", "en"),  # the configured default wins over the browser
    (None, "en-US", "zh-CN", "zh-CN"),
    ("xx", "en-US", None, "en"),  # an unknown cookie is ignored
])
def test_negotiate(cookie: str | None, accept_language: str | None, default: str | None, expected: str) -> None:
    assert negotiate(cookie, accept_language, default) == expected


@pytest.mark.parametrize(("size", "expected"), [
    (0, "0 B"), (999, "999 B"), (1000, "1 kB"), (2_345_678, "2.35 MB"), (None, "—"),
])
def test_human_size(size: int | None, expected: str) -> None:
    assert human_size(size) == expected


def test_translator_renders_chinese() -> None:
    zh = Translator("zh-CN")
    assert zh.gettext("Namespaces") == "命名空间"
    assert zh.gettext("Access credentials") == "访问凭证"
    assert zh.gettext("Page %(page)s of %(pages)s", page=2, pages=5) == "第 2 页，共 5 页"
    assert zh.gettext("owner") == "所有者"
    assert zh.gettext("Not a console string") == "Not a console string"
    template = Environment(autoescape=True).from_string('{{ _("Delete tag %(tag)s?")|format(tag="v1") }}')
    assert template.render(_=zh.gettext) == "确定删除镜像版本 v1？"


def test_english_is_the_source_text() -> None:
    en = Translator("en")
    assert en.gettext("Namespaces") == "Namespaces"
    assert en.gettext("Page %(page)s of %(pages)s", page=2, pages=5) == "Page 2 of 5"
