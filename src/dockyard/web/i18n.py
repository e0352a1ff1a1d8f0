"""Languages of the console: English (the source strings) and Simplified Chinese.

Translations live in gettext `.po` files under web/locale, read with Babel at start-up (no
compile step). Templates call `_("…")`; views call `Translator.gettext`. Dates, relative times
and sizes are formatted for the chosen locale with Babel too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.core import negotiate_locale
from babel.dates import format_datetime, format_timedelta
from babel.messages.pofile import read_po

from dockyard.meta.db import aware

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = {"en": "English", "zh-CN": "简体中文"}
DEFAULT = "en"
_BABEL = {"en": "en", "zh-CN": "zh_Hans_CN"}
_FILES = {"zh-CN": "zh_CN"}


def N_(message: str) -> str:
    """Marks a string for `scripts/i18n` without translating it (it is translated where shown)."""
    return message


# Words the pages translate from data (`_(role)`, `_(action)`, `_(network)`), which no extractor
# can see in the templates: listed here so the catalog keeps them.
DATA_WORDS = (N_("owner"), N_("developer"), N_("guest"), N_("pull"), N_("push"), N_("delete"),
              N_("Public network"), N_("VPC network"), N_("Internal network"),
              # job states (web/templates/_jobs_table.html)
              N_("queued"), N_("running"), N_("succeeded"), N_("failed"), N_("cancelled"))


@lru_cache(maxsize=None)
def catalog(language: str) -> dict[str, str]:
    """msgid -> translation for a language (empty for English and for untranslated entries)."""
    name = _FILES.get(language)
    if name is None:
        return {}
    path = LOCALE_DIR / name / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        po = read_po(fh)
    return {str(m.id): str(m.string) for m in po if m.id and m.string and not m.fuzzy}


def negotiate(cookie: str | None, accept_language: str | None, default: str | None) -> str:
    """The user's pick (cookie), else the configured default, else the browser's preference."""
    if cookie in LANGUAGES:
        return cookie
    if default in LANGUAGES:
        return default
    preferred = [part.split(";")[0].strip() for part in (accept_language or "").split(",") if part.strip()]
    found = negotiate_locale([p.replace("_", "-") for p in preferred], ["zh-CN", "zh", "en"], sep="-")
    if found and found.lower().startswith("zh"):
        return "zh-CN"
    return DEFAULT


def human_size(size: int | None) -> str:
    """Sizes as registries show them: decimal units (1 MB = 1,000,000 bytes), three figures."""
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover


@dataclass(frozen=True)
class Translator:
    language: str

    @property
    def messages(self) -> dict[str, str]:
        return catalog(self.language)

    def gettext(self, message: str, **values: object) -> str:
        text = self.messages.get(message, message)
        return text % values if values else text

    def other_language(self) -> str:
        return "zh-CN" if self.language == "en" else "en"

    def datetime(self, value: datetime | None) -> str:
        if value is None:
            return "—"
        return format_datetime(aware(value), "yyyy-MM-dd HH:mm:ss", tzinfo=UTC, locale=self.locale) + " UTC"

    def ago(self, value: datetime | None, now: datetime | None = None) -> str:
        if value is None:
            return self.gettext("never")
        delta = (now or datetime.now(UTC)) - aware(value)
        if delta.total_seconds() < 45:
            return self.gettext("just now")
        return self.gettext("%(time)s ago", time=format_timedelta(delta, locale=self.locale))

    @property
    def locale(self) -> Locale:
        return _locale(self.language)


@lru_cache(maxsize=None)
def _locale(language: str) -> Locale:
    return Locale.parse(_BABEL[language])
