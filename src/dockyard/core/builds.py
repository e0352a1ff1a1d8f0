"""Automated image builds from git sources (pure: no I/O): build rules and the providers' push webhooks.

**Rules**: a kind (`branch` or `tag`), a regular expression `match` applied with fullmatch to the short
ref name (`main`, `v1.2`) and tag templates: `release-v(.*)` with `${1}` tags `release-v1.2` as `1.2`.
Variables: `${1}`... and `${name}` (match's groups), `${branch}` or `${tag}` (the short name, by kind),
`${sha}`, `${sha7}`; `$$` is a `$`. The regular expressions are the users' own and backtrack: callers
matching on a request path should bound the time (refs are at most 400 characters).

**Webhooks** from GitHub, GitLab, Gitea/Forgejo, Bitbucket (Cloud and Server) and plain git: `verify`
(before anything is parsed), `event_kind`, `parse_push`, and `delivery_id` to drop duplicates.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.core.names import is_valid_tag

PROVIDERS = ("github", "gitlab", "gitea", "bitbucket", "git")
KINDS = ("branch", "tag")
PLATFORM_RE = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?$")  # os/arch[/variant]

MAX_RULES, MAX_TAGS, MAX_PLATFORMS, MAX_LABELS, MAX_BUILD_ARGS = 50, 10, 8, 4, 64
MAX_REGEX, MAX_TEMPLATE, MAX_PATH, MAX_ARG_VALUE = 500, 255, 255, 4096
MAX_REF, MAX_DELIVERY_ID = 400, 200
ZERO_SHA = "0" * 40

_FIELDS = ("kind", "match", "tags", "dockerfile", "context", "build_args", "platforms", "worker_labels")
_RESERVED = ("branch", "tag", "sha", "sha7")
_ARG_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_LABEL_KEY_RE = re.compile(r"[a-z][a-z0-9_.-]{0,62}")
_LABEL_VALUE_RE = re.compile(r"[A-Za-z0-9_.-]{1,63}")
_COMMIT_RE = re.compile(r"[0-9a-fA-F]{7,64}")
_TOKEN_RE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*|[0-9]+)\})")
_UNSAFE_TAG_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_PREFIXES = (("refs/heads/", "branch"), ("refs/tags/", "tag"))


def _show(value: object) -> str:
    """A short description of a bad value for error messages."""
    if value is None:
        return "(missing)"
    return repr(value[:80]) if isinstance(value, str) else f"<{type(value).__name__}>"


# --- rules ---

@dataclass(frozen=True, slots=True)
class Rule:
    """Which pushes build (`kind`, `match`) and how; make one with `parse_rule`."""

    kind: str
    match: str
    tags: tuple[str, ...]
    dockerfile: str = "Dockerfile"
    context: str = "."
    build_args: tuple[tuple[str, str], ...] = ()
    platforms: tuple[str, ...] = ()  # empty: the worker's own platform
    worker_labels: tuple[tuple[str, str], ...] = ()  # only workers with all these labels build it

    def to_json(self) -> dict[str, Any]:
        """The JSON form `parse_rule` reads."""
        return {"kind": self.kind, "match": self.match, "tags": list(self.tags), "dockerfile": self.dockerfile,
                "context": self.context, "build_args": dict(self.build_args), "platforms": list(self.platforms),
                "worker_labels": dict(self.worker_labels)}


def parse_rule(raw: object) -> Rule:
    """Validate a rule's JSON form; ValueError says what is wrong."""
    if not isinstance(raw, dict):
        raise ValueError("a build rule must be an object")
    unknown = sorted(str(key) for key in raw if key not in _FIELDS)
    if unknown:
        raise ValueError(f"unknown build rule field(s): {', '.join(unknown)[:200]}")
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"kind must be 'branch' or 'tag', not {_show(kind)}")
    pattern = _parse_match(raw.get("match"))

    def opt(key: str, default: Any) -> Any:
        value = raw.get(key)
        return default if value is None else value

    return Rule(kind=kind, match=pattern.pattern, tags=_parse_templates(raw.get("tags"), kind, pattern),
                dockerfile=_safe_path(opt("dockerfile", "Dockerfile"), "dockerfile"),
                context=_safe_path(opt("context", "."), "context"),
                build_args=_parse_build_args(opt("build_args", {})),
                platforms=_parse_platforms(opt("platforms", [])),
                worker_labels=_parse_labels(opt("worker_labels", {})))


def parse_rules(raw: object) -> list[Rule]:
    """Validate a list of 1 to 50 rules; messages start with `rule N: ` (N counts from 1)."""
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"build rules must be a list of 1 to {MAX_RULES} rules")
    if len(raw) > MAX_RULES:
        raise ValueError(f"{len(raw)} build rules; the limit is {MAX_RULES}")
    rules = []
    for number, item in enumerate(raw, 1):
        try:
            rules.append(parse_rule(item))
        except ValueError as exc:
            raise ValueError(f"rule {number}: {exc}") from None
    return rules


def compile_match(pattern: str) -> Any:
    """A rule's expression, compiled by RE2: matching takes time linear in the name, whatever the
    expression (Python's `re` can take exponential time on some, e.g. `(a+)+b`, and rules are
    matched while a provider's webhook request waits). RE2's syntax is Python's without
    backreferences and lookaround, which branch and tag names do not need."""
    import re2  # loaded with the first rule (3 MiB a registry without builds keeps)

    options = re2.Options()
    options.log_errors = False  # an invalid expression is the caller's ValueError, not a line on stderr
    return re2.compile(pattern, options)


def _re2_error() -> type[Exception]:
    import re2

    return re2.error  # type: ignore[no-any-return]


def _parse_match(value: object) -> Any:
    if value is None:
        raise ValueError("match is missing: give a regular expression for the branch or tag names")
    if not isinstance(value, str) or not value:
        raise ValueError("match must be a non-empty regular expression")
    if len(value) > MAX_REGEX:
        raise ValueError(f"match is {len(value)} characters long; the limit is {MAX_REGEX}")
    try:
        re.compile(value)  # Python's grammar too: RE2 lets some mistakes through (duplicate group names)
        return compile_match(value)
    except (re.error, RecursionError) as exc:
        raise ValueError(f"match {_show(value)} is not a valid regular expression: {exc}") from None
    except (_re2_error(), TypeError, OverflowError) as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"match {_show(value)} is not a valid regular expression (RE2 syntax): {reason}") from None


def _parse_templates(value: object, kind: str, pattern: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"tags must be a list of 1 to {MAX_TAGS} tag templates")
    if len(value) > MAX_TAGS:
        raise ValueError(f"{len(value)} tag templates; the limit is {MAX_TAGS}")
    clash = [name for name in _RESERVED if name in pattern.groupindex]
    if clash:
        raise ValueError(f"match's group name {clash[0]!r} is the name of a variable; rename the group")
    known = {kind, "sha", "sha7", *pattern.groupindex, *(str(n) for n in range(1, pattern.groups + 1))}
    return tuple(_parse_template(template, known, kind, pattern.groups) for template in value)


def _parse_template(template: object, known: set[str], kind: str, groups: int) -> str:
    if not isinstance(template, str) or not template:
        raise ValueError("a tag template must be a non-empty string")
    if len(template) > MAX_TEMPLATE:
        raise ValueError(f"tag template is {len(template)} characters long; the limit is {MAX_TEMPLATE}")
    names = _template_names(template)
    for name in names:
        if name in known:
            continue
        if name in KINDS:
            raise ValueError(f"tag template {template!r}: ${{{name}}} is for {name} rules; this is a {kind} rule")
        if name.isdigit():
            raise ValueError(f"tag template {template!r}: ${{{name}}} but match has {groups} group(s)")
        raise ValueError(f"tag template {template!r}: unknown variable ${{{name}}}; use ${{1}}... or ${{name}} "
                         f"for match's groups, ${{{kind}}}, ${{sha}} or ${{sha7}}")
    if not names and not is_valid_tag(render_template(template, {})):
        raise ValueError(f"tag template {template!r} is not a valid tag: up to 128 characters of [A-Za-z0-9_.-], "
                         "not starting with '.' or '-'")
    return template


def _template_names(template: str) -> list[str]:
    """The variables a template uses; ValueError for a `$` that starts neither `${name}` nor `$$`."""
    names, pos = [], 0
    while (start := template.find("$", pos)) >= 0:
        token = _TOKEN_RE.match(template, start)
        if token is None:
            raise ValueError(f"tag template {template!r}: a '$' must start ${{name}} or be doubled ($$)")
        if token.group(2) is not None:
            names.append(token.group(2))
        pos = token.end()
    return names


def render_template(template: str, groups: Mapping[str, str]) -> str:
    """Substitute `${name}` from `groups` and `$$` with `$`; ValueError for unknown names or a stray `$`."""
    missing = [name for name in _template_names(template) if name not in groups]
    if missing:
        raise ValueError(f"tag template {template!r}: unknown variable ${{{missing[0]}}}")
    return _TOKEN_RE.sub(lambda token: "$" if token.group(1) else groups[token.group(2)], template)


def _safe_path(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} must be a non-empty relative path")
    if len(value) > MAX_PATH:
        raise ValueError(f"{field} is {len(value)} characters long; the limit is {MAX_PATH}")
    if _CONTROL_RE.search(value) or "\\" in value:
        raise ValueError(f"{field} {_show(value)} contains a control character or a backslash")
    if value.startswith("/") or ".." in value.split("/"):
        raise ValueError(f"{field} {_show(value)} must be relative to the repository, without '..'")
    return value


def _parse_build_args(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise ValueError("build_args must be an object of NAME: value")
    if len(value) > MAX_BUILD_ARGS:
        raise ValueError(f"{len(value)} build args; the limit is {MAX_BUILD_ARGS}")
    for key, arg in value.items():
        if not isinstance(key, str) or not _ARG_KEY_RE.fullmatch(key):
            raise ValueError(f"build arg name {_show(key)}: use letters, digits and '_', not starting with a digit")
        if not isinstance(arg, str):
            raise ValueError(f"build arg {key}: the value must be a string")
        if len(arg) > MAX_ARG_VALUE or "\x00" in arg:
            raise ValueError(f"build arg {key}: the value must be at most {MAX_ARG_VALUE} characters, without NUL")
    return tuple(value.items())


def _parse_platforms(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError("platforms must be a list such as [\"linux/amd64\", \"linux/arm64/v8\"]")
    if len(value) > MAX_PLATFORMS:
        raise ValueError(f"{len(value)} platforms; the limit is {MAX_PLATFORMS}")
    for platform in value:
        if not isinstance(platform, str) or not PLATFORM_RE.fullmatch(platform):
            raise ValueError(f"platform {_show(platform)} is not os/arch[/variant], e.g. linux/arm64/v8")
    if len(set(value)) != len(value):
        raise ValueError("a platform is listed twice")
    return tuple(value)


def _parse_labels(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise ValueError("worker_labels must be an object of label: value")
    if len(value) > MAX_LABELS:
        raise ValueError(f"{len(value)} worker labels; the limit is {MAX_LABELS}")
    for key, label in value.items():
        if not isinstance(key, str) or not _LABEL_KEY_RE.fullmatch(key):
            raise ValueError(f"worker label {_show(key)}: up to 63 of [a-z0-9_.-], starting with a letter")
        if not isinstance(label, str) or not _LABEL_VALUE_RE.fullmatch(label):
            raise ValueError(f"worker label {key}: the value {_show(label)} must be 1 to 63 of [A-Za-z0-9_.-]")
    return tuple(value.items())


# --- matching pushes ---

def short_ref(ref: str) -> tuple[str, str] | None:
    """("branch", name) for refs/heads/name, ("tag", name) for refs/tags/name, else None."""
    for prefix, kind in _PREFIXES:
        if isinstance(ref, str) and ref.startswith(prefix) and len(ref) > len(prefix):
            return kind, ref[len(prefix):]
    return None


def is_commit(ref: str) -> bool:
    """Is this a commit id: 7 to 64 hex digits?"""
    return isinstance(ref, str) and _COMMIT_RE.fullmatch(ref) is not None


def tags_for(rule: Rule, ref: str, revision: str) -> list[str] | None:
    """The image tags a push of `revision` to the full `ref` gets from `rule`, None when the rule does not apply.

    A rendered tag that is not a valid tag is sanitised (characters outside [A-Za-z0-9_.-] become '-', leading
    '.' and '-' go, 128 characters kept); one left empty is skipped, so the list may be empty. No duplicates.
    """
    if not is_commit(revision):
        raise ValueError(f"revision {_show(revision)} is not a commit id (7 to 64 hex digits)")
    short = short_ref(ref)
    if short is None or short[0] != rule.kind:
        return None
    found = compile_match(rule.match).fullmatch(short[1])
    if found is None:
        return None
    variables = {str(n): group or "" for n, group in enumerate(found.groups(), 1)}
    variables.update({name: group or "" for name, group in found.groupdict().items()})
    variables.update({rule.kind: short[1], "sha": revision, "sha7": revision[:7]})
    tags: list[str] = []
    for template in rule.tags:
        tag = _sanitise(render_template(template, variables))
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def _sanitise(tag: str) -> str:
    if is_valid_tag(tag):
        return tag
    return _UNSAFE_TAG_CHARS.sub("-", tag).lstrip(".-")[:128]


def matching(rules: list[Rule], ref: str, revision: str) -> list[tuple[int, Rule, list[str]]]:
    """Each rule that applies to the push, with its index in `rules` (from 0) and its tags."""
    found = []
    for index, rule in enumerate(rules):
        tags = tags_for(rule, ref, revision)
        if tags is not None:
            found.append((index, rule, tags))
    return found


# --- provider webhooks ---

@dataclass(frozen=True, slots=True)
class PushEvent:
    """A pushed ref: `ref` is refs/heads/x or refs/tags/y; deletions have `deleted` (callers ignore them)."""

    ref: str
    revision: str
    deleted: bool


_DELIVERY_HEADERS = {"github": ("X-GitHub-Delivery",), "gitlab": ("X-Gitlab-Event-UUID", "X-Gitlab-Webhook-UUID"),
                     "gitea": ("X-Gitea-Delivery", "X-Forgejo-Delivery"),
                     "bitbucket": ("X-Request-UUID", "X-Request-Id")}
_EVENT_HEADERS = {"github": ("X-GitHub-Event",), "gitlab": ("X-Gitlab-Event",),
                  "gitea": ("X-Gitea-Event", "X-Forgejo-Event"), "bitbucket": ("X-Event-Key",)}
_EVENTS = {"github": {"push": "push", "ping": "ping"}, "gitlab": {"push hook": "push", "tag push hook": "push"},
           "gitea": {"push": "push"},
           "bitbucket": {"repo:push": "push", "repo:refs_changed": "push", "diagnostics:ping": "ping"}}
_SIGNATURE_HEADERS = {"github": ("X-Hub-Signature-256",), "gitea": ("X-Gitea-Signature", "X-Forgejo-Signature"),
                      "bitbucket": ("X-Hub-Signature",), "git": ("X-Hub-Signature-256", "X-Dockyard-Signature-256")}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value without surrounding spaces, looked up case-insensitively; None when absent."""
    wanted = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == wanted and isinstance(value, str):
            return value.strip()
    return None


def delivery_id(provider: str, headers: Mapping[str, str]) -> str | None:
    """The provider's id of a delivery; None when absent, empty, longer than 200 or not printable ASCII."""
    for name in _DELIVERY_HEADERS.get(provider, ()):
        value = _header(headers, name)
        if value and len(value) <= MAX_DELIVERY_ID and value.isascii() and value.isprintable():
            return value
    return None


def verify(provider: str, secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Does the delivery carry the provider's signature (GitLab: token) for `secret`? Constant-time compares."""
    if not secret or provider not in PROVIDERS:
        return False
    key = secret.encode("utf-8")
    if provider == "gitlab":
        token = _header(headers, "X-Gitlab-Token")
        return token is not None and hmac.compare_digest(token.encode("utf-8", "replace"), key)
    digest = hmac.new(key, body, hashlib.sha256).hexdigest()
    expected = (digest if provider == "gitea" else "sha256=" + digest).encode("ascii")
    results = [hmac.compare_digest(value.lower().encode("utf-8", "replace"), expected)
               for value in (_header(headers, name) for name in _SIGNATURE_HEADERS[provider]) if value is not None]
    return any(results)


def event_kind(provider: str, headers: Mapping[str, str]) -> str:
    """"push", "ping" or "other", from the provider's event header (plain git sends pushes only)."""
    if provider == "git":
        return "push"
    for name in _EVENT_HEADERS.get(provider, ()):
        value = _header(headers, name)
        if value is not None:
            return _EVENTS[provider].get(value.lower(), "other")
    return "other"


def parse_push(provider: str, body: bytes) -> list[PushEvent]:
    """The refs a push delivery reports; ValueError for anything but a well-formed push payload."""
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {_show(provider)}")
    try:
        data = json.loads(body)
    except (ValueError, TypeError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError("the webhook's body is not JSON") from None
    if provider in ("github", "gitea"):
        return [_github_event(_obj(data, "the payload"))]
    if provider == "gitlab":
        return [_gitlab_event(_obj(data, "the payload"))]
    if provider == "bitbucket":
        return _bitbucket_events(_obj(data, "the payload"))
    data = _obj(data, "the payload")  # plain git
    return [_event(data.get("ref"), data.get("after") if data.get("after") is not None else data.get("revision"))]


def _obj(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object")
    return value


def _sha(value: object, what: str) -> str:
    if not isinstance(value, str) or not is_commit(value):
        raise ValueError(f"{what} {_show(value)} is not a commit id (7 to 64 hex digits)")
    return value.lower()


def _event(ref: object, revision: object, deleted: bool = False) -> PushEvent:
    if not isinstance(ref, str) or len(ref) > MAX_REF or short_ref(ref) is None:
        raise ValueError(f"ref {_show(ref)} is not refs/heads/<branch> or refs/tags/<tag> of at most {MAX_REF} "
                         "characters")
    sha = _sha(revision, "revision")
    return PushEvent(ref=ref, revision=sha, deleted=deleted or set(sha) == {"0"})


def _github_event(data: dict[str, Any]) -> PushEvent:
    deleted = data.get("deleted", False)
    if not isinstance(deleted, bool):
        raise ValueError("deleted must be true or false")
    head = data.get("head_commit")  # annotated tags: "after" is the tag object, head_commit the commit
    revision = data.get("after") if head is None else _obj(head, "head_commit").get("id")
    return _event(data.get("ref"), revision, deleted)


def _gitlab_event(data: dict[str, Any]) -> PushEvent:
    if data.get("object_kind") not in ("push", "tag_push"):
        raise ValueError(f"object_kind {_show(data.get('object_kind'))} is not push or tag_push")
    after = _sha(data.get("after"), "after")
    checkout = data.get("checkout_sha")
    deleted = set(after) == {"0"}
    return _event(data.get("ref"), after if deleted or checkout is None else checkout, deleted)


def _bitbucket_events(data: dict[str, Any]) -> list[PushEvent]:
    cloud = "push" in data
    changes = _obj(data["push"], "push").get("changes") if cloud else data.get("changes")
    if not isinstance(changes, list):
        raise ValueError("the payload has no list of changes")
    return [(_cloud_change if cloud else _server_change)(_obj(change, "a change")) for change in changes]


def _cloud_change(change: dict[str, Any]) -> PushEvent:
    new = change.get("new")
    if new is None:
        return _event(_cloud_ref(_obj(change.get("old"), "a deleted ref's old state")), ZERO_SHA, True)
    new = _obj(new, "a change's new state")
    return _event(_cloud_ref(new), _obj(new.get("target"), "a change's target").get("hash"))


def _cloud_ref(state: dict[str, Any]) -> str:
    kind, name = state.get("type"), state.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"ref name {_show(name)} must be a non-empty string")
    if kind == "branch":
        return "refs/heads/" + name
    if kind == "tag":
        return "refs/tags/" + name
    raise ValueError(f"ref type {_show(kind)} is not branch or tag")


def _server_change(change: dict[str, Any]) -> PushEvent:
    ref = _obj(change.get("ref"), "a change's ref").get("id")
    return _event(ref, change.get("toHash"), change.get("type") == "DELETE")
