"""core/builds.py: build rules (validation, tag templates, matching pushes) and the providers' push webhooks
(signatures computed the way each provider documents them, delivery ids, event kinds, payloads)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from starlette.datastructures import Headers

from dockyard.core import builds
from dockyard.core.builds import (PushEvent, Rule, delivery_id, event_kind, is_commit, matching, parse_push,
                                  parse_rule, parse_rules, render_template, short_ref, tags_for, verify)

SHA = "0123456789abcdef0123456789abcdef01234567"
SHA2 = "89abcdef0123456789abcdef0123456789abcdef"
ZERO = "0" * 40


def rule(match: str = "(.*)", tags: list[str] | None = None, kind: str = "branch", **fields: Any) -> Rule:
    return parse_rule({"kind": kind, "match": match, "tags": tags or ["${1}"], **fields})


# --- tag templates and matching ---

def test_the_acr_example_release_v_prefix_is_cut() -> None:
    assert tags_for(rule("release-v(.*)", ["${1}"], kind="tag"), "refs/tags/release-v1.2", SHA) == ["1.2"]


def test_named_groups_and_several_tags() -> None:
    semver = rule(r"v(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)", kind="tag",
                  tags=["${major}", "${major}.${minor}", "${major}.${minor}.${patch}", "latest", "${tag}"])
    assert tags_for(semver, "refs/tags/v1.2.3", SHA) == ["1", "1.2", "1.2.3", "latest", "v1.2.3"]


def test_named_groups_are_numbered_too() -> None:
    assert tags_for(rule("(?P<name>.*)", ["${1}-${name}"]), "refs/heads/dev", SHA) == ["dev-dev"]


def test_sha_and_sha7() -> None:
    main = rule("main", ["${branch}-${sha7}", "${sha}", "edge"])
    assert tags_for(main, "refs/heads/main", SHA) == ["main-0123456", SHA, "edge"]


def test_tags_are_deduplicated_in_order() -> None:
    assert tags_for(rule("(.*)", ["${1}", "latest", "${branch}", "${1}"]), "refs/heads/latest", SHA) == ["latest"]
    assert tags_for(rule("(.*)", ["b", "${1}", "a", "b"]), "refs/heads/a", SHA) == ["b", "a"]


def test_dollar_dollar_is_a_literal_dollar() -> None:
    assert render_template("a$$b${x}$$", {"x": "1"}) == "a$b1$"
    assert tags_for(rule("(.*)", ["${1}$$"]), "refs/heads/x", SHA) == ["x-"]  # '$' is not a tag character


@pytest.mark.parametrize("template", ["${y}", "a$b", "${", "${x", "$"])
def test_render_template_refuses_unknown_variables_and_stray_dollars(template: str) -> None:
    with pytest.raises(ValueError):
        render_template(template, {"x": "1"})


@pytest.mark.parametrize(("kind", "ref"), [("branch", "refs/tags/main"), ("tag", "refs/heads/main")])
def test_a_rule_applies_to_its_kind_only(kind: str, ref: str) -> None:
    assert tags_for(rule("main", ["x"], kind=kind), ref, SHA) is None


@pytest.mark.parametrize("ref", ["refs/heads/main2", "refs/heads/xmain", "refs/heads/mai", "refs/heads/main\n"])
def test_match_must_match_the_whole_name(ref: str) -> None:
    assert tags_for(rule("main", ["x"]), ref, SHA) is None


@pytest.mark.parametrize("ref", ["main", "refs/heads/", "refs/tags/", "refs/pull/1/head", "refs/remotes/origin/main",
                                 "heads/main", ""])
def test_other_refs_match_no_rule(ref: str) -> None:
    assert tags_for(rule(".*", ["x"]), ref, SHA) is None
    assert tags_for(rule(".*", ["x"], kind="tag"), ref, SHA) is None


@pytest.mark.parametrize(("name", "expected"), [
    ("feature/Foo Bar", ["feature-Foo-Bar"]),
    ("-dash", ["dash"]),
    ("..dots", ["dots"]),
    (".-._x", ["_x"]),
    ("caf\u00e9", ["caf-"]),
    ("a" * 200, ["a" * 128]),
    ("...", []),
    ("\u00e9", []),
])
def test_rendered_tags_are_sanitised_or_skipped(name: str, expected: list[str]) -> None:
    assert tags_for(rule("(.*)", ["${1}"]), "refs/heads/" + name, SHA) == expected


def test_an_unmatched_optional_group_is_empty() -> None:
    optional = rule(r"v(\d+)(-rc)?", ["${1}${2}", "${2}"], kind="tag")
    assert tags_for(optional, "refs/tags/v3", SHA) == ["3"]
    assert tags_for(optional, "refs/tags/v3-rc", SHA) == ["3-rc", "rc"]  # "-rc" loses its leading "-"


@pytest.mark.parametrize("revision", ["", "abc", "g" * 40, "0123456 ", None])
def test_tags_for_wants_a_commit_id(revision: Any) -> None:
    with pytest.raises(ValueError, match="not a commit id"):
        tags_for(rule(), "refs/heads/main", revision)


def test_matching_gives_each_applicable_rule_with_its_index() -> None:
    rules = parse_rules([
        {"kind": "branch", "match": "main", "tags": ["latest"]},
        {"kind": "tag", "match": ".*", "tags": ["${tag}"]},
        {"kind": "branch", "match": "(.*)", "tags": ["${1}", "${sha7}"]},
        {"kind": "branch", "match": "(x)?main", "tags": ["${1}"]},  # applies, renders no valid tag
    ])
    assert matching(rules, "refs/heads/main", SHA) == [
        (0, rules[0], ["latest"]), (2, rules[2], ["main", "0123456"]), (3, rules[3], [])]
    assert matching(rules, "refs/tags/v1", SHA) == [(1, rules[1], ["v1"])]
    assert matching(rules, "refs/heads/dev", SHA) == [(2, rules[2], ["dev", "0123456"])]
    assert matching([], "refs/heads/dev", SHA) == []


@pytest.mark.parametrize(("ref", "expected"), [
    ("refs/heads/main", ("branch", "main")), ("refs/heads/feature/x", ("branch", "feature/x")),
    ("refs/tags/v1", ("tag", "v1")), ("refs/tags/a/b", ("tag", "a/b")),
    ("refs/heads/", None), ("refs/tags/", None), ("refs/pull/1/merge", None), ("main", None), ("", None),
    ("refs/notes/commits", None), ("REFS/HEADS/main", None),
])
def test_short_ref(ref: str, expected: tuple[str, str] | None) -> None:
    assert short_ref(ref) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("0123456", True), (SHA, True), (SHA.upper(), True), ("a" * 64, True),
    ("012345", False), ("a" * 65, False), ("g123456", False), ("0123456\n", False), ("", False), (" 0123456", False),
])
def test_is_commit(value: str, expected: bool) -> None:
    assert is_commit(value) is expected


# --- rules: JSON form and validation ---

def test_defaults() -> None:
    parsed = parse_rule({"kind": "branch", "match": "main", "tags": ["latest"]})
    assert parsed == Rule(kind="branch", match="main", tags=("latest",))
    assert (parsed.dockerfile, parsed.context, parsed.build_args, parsed.platforms, parsed.worker_labels) == \
        ("Dockerfile", ".", (), (), ())


def test_null_optional_fields_take_the_defaults() -> None:
    assert parse_rule({"kind": "tag", "match": ".*", "tags": ["x"], "dockerfile": None, "context": None,
                       "build_args": None, "platforms": None, "worker_labels": None}) == \
        Rule(kind="tag", match=".*", tags=("x",))


def test_to_json_round_trips() -> None:
    raw = {"kind": "tag", "match": r"release-v(?P<v>\d+(?:\.\d+)*)", "tags": ["${v}", "${1}-${sha7}", "stable"],
           "dockerfile": "docker/prod.Dockerfile", "context": "services/api",
           "build_args": {"VERSION": "1", "_X": "a=b c"}, "platforms": ["linux/amd64", "linux/arm64/v8"],
           "worker_labels": {"region": "overseas", "gpu.kind": "A100"}}
    parsed = parse_rule(raw)
    assert parsed.to_json() == raw
    assert parse_rule(json.loads(json.dumps(parsed.to_json()))) == parsed
    assert parsed.build_args == (("VERSION", "1"), ("_X", "a=b c"))
    assert parsed.worker_labels == (("region", "overseas"), ("gpu.kind", "A100"))
    hash(parsed)  # frozen, hashable


def test_the_limits_themselves_are_accepted() -> None:
    parsed = rule("a" * 500, [f"t{n}" for n in range(10)], dockerfile="d" * 255, context="c/" * 127 + "c",
                  build_args={"A" * 128: "v" * 4096, **{f"K{n}": "" for n in range(63)}},
                  platforms=["linux/amd64", "linux/arm64", "linux/arm64/v8", "linux/arm/v7", "linux/arm/v6",
                             "linux/386", "linux/ppc64le", "linux/s390x"],
                  worker_labels={"a": "1", "b" * 63: "2" * 63, "c.d-e_f": "x.Y-z_", "d": "v"})
    assert len(parsed.tags) == 10 and len(parsed.platforms) == 8 and len(parsed.worker_labels) == 4


BASE: dict[str, Any] = {"kind": "branch", "match": "(.*)", "tags": ["${1}"]}


@pytest.mark.parametrize(("changes", "message"), [
    # the rule itself
    ({"colour": "red"}, "unknown build rule field.*colour"),
    ({"Kind": "branch"}, "unknown build rule field.*Kind"),
    # kind
    ({"kind": None}, "kind must be 'branch' or 'tag'"),
    ({"kind": "commit"}, "kind must be 'branch' or 'tag'"),
    ({"kind": "Branch"}, "kind must be 'branch' or 'tag'"),
    ({"kind": ["branch"]}, "kind must be 'branch' or 'tag'"),
    # match
    ({"match": None}, "match is missing"),
    ({"match": ""}, "match must be a non-empty"),
    ({"match": 5}, "match must be a non-empty"),
    ({"match": "a" * 501}, "501 characters long; the limit is 500"),
    ({"match": "release-(.*"}, "match 'release-\\(\\.\\*' is not a valid regular expression"),
    ({"match": "a{99999999999}"}, "not a valid regular expression"),
    ({"match": "(?P<a>x)(?P<a>y)"}, "not a valid regular expression"),
    ({"match": "(?P<sha>.*)", "tags": ["x"]}, "group name 'sha' is the name of a variable"),
    ({"match": "(?P<branch>.*)", "tags": ["x"]}, "group name 'branch'"),
    # tags
    ({"tags": None}, "tags must be a list of 1 to 10"),
    ({"tags": []}, "tags must be a list of 1 to 10"),
    ({"tags": "latest"}, "tags must be a list of 1 to 10"),
    ({"tags": {"a": "b"}}, "tags must be a list of 1 to 10"),
    ({"tags": [f"t{n}" for n in range(11)]}, "11 tag templates; the limit is 10"),
    ({"tags": [""]}, "a tag template must be a non-empty string"),
    ({"tags": [7]}, "a tag template must be a non-empty string"),
    ({"tags": ["${1}" + "a" * 252]}, "256 characters long; the limit is 255"),
    ({"tags": ["a$b"]}, "a '\\$' must start"),
    ({"tags": ["${1"]}, "a '\\$' must start"),
    ({"tags": ["${1-x}"]}, "a '\\$' must start"),
    ({"tags": ["${2}"]}, "\\$\\{2\\} but match has 1 group"),
    ({"tags": ["${0}"]}, "\\$\\{0\\} but match has 1 group"),
    ({"match": "main", "tags": ["${1}"]}, "\\$\\{1\\} but match has 0 group"),
    ({"tags": ["${version}"]}, "unknown variable \\$\\{version\\}"),
    ({"tags": ["${SHA}"]}, "unknown variable \\$\\{SHA\\}"),
    ({"tags": ["${tag}"]}, "\\$\\{tag\\} is for tag rules; this is a branch rule"),
    ({"kind": "tag", "tags": ["${branch}"]}, "\\$\\{branch\\} is for branch rules; this is a tag rule"),
    ({"tags": ["bad tag"]}, "'bad tag' is not a valid tag"),
    ({"tags": ["-x"]}, "is not a valid tag"),
    ({"tags": ["a" * 129]}, "is not a valid tag"),
    ({"tags": ["$$"]}, "is not a valid tag"),
    # dockerfile and context
    ({"dockerfile": ""}, "dockerfile must be a non-empty relative path"),
    ({"dockerfile": 3}, "dockerfile must be a non-empty relative path"),
    ({"dockerfile": "/etc/passwd"}, "dockerfile '/etc/passwd' must be relative to the repository, without '..'"),
    ({"dockerfile": "../Dockerfile"}, "must be relative"),
    ({"dockerfile": "a/../../Dockerfile"}, "must be relative"),
    ({"dockerfile": "a/.."}, "must be relative"),
    ({"dockerfile": "a\x00b"}, "control character"),
    ({"dockerfile": "a\nb"}, "control character"),
    ({"dockerfile": "..\\Dockerfile"}, "backslash"),
    ({"dockerfile": "d" * 256}, "dockerfile is 256 characters long; the limit is 255"),
    ({"context": ""}, "context must be a non-empty relative path"),
    ({"context": "/"}, "context '/' must be relative"),
    ({"context": ".."}, "must be relative"),
    ({"context": "x/../.."}, "must be relative"),
    ({"context": "c" * 256}, "context is 256 characters long"),
    ({"context": "a\x00"}, "control character"),
    # build args
    ({"build_args": ["A=1"]}, "build_args must be an object"),
    ({"build_args": {"1A": "x"}}, "build arg name '1A'"),
    ({"build_args": {"A-B": "x"}}, "build arg name 'A-B'"),
    ({"build_args": {"": "x"}}, "build arg name ''"),
    ({"build_args": {"A B": "x"}}, "build arg name"),
    ({"build_args": {"A" * 129: "x"}}, "build arg name"),
    ({"build_args": {"A": 1}}, "build arg A: the value must be a string"),
    ({"build_args": {"A": None}}, "build arg A: the value must be a string"),
    ({"build_args": {"A": "v" * 4097}}, "build arg A: the value must be at most 4096"),
    ({"build_args": {"A": "a\x00b"}}, "without NUL"),
    ({"build_args": {f"K{n}": "" for n in range(65)}}, "65 build args; the limit is 64"),
    # platforms
    ({"platforms": "linux/amd64"}, "platforms must be a list"),
    ({"platforms": ["linux"]}, "platform 'linux' is not os/arch"),
    ({"platforms": ["Linux/amd64"]}, "is not os/arch"),
    ({"platforms": ["linux/amd64/"]}, "is not os/arch"),
    ({"platforms": ["linux/arm/v7/x"]}, "is not os/arch"),
    ({"platforms": ["linux/amd64\n"]}, "is not os/arch"),
    ({"platforms": [""]}, "is not os/arch"),
    ({"platforms": [1]}, "platform <int> is not os/arch"),
    ({"platforms": ["linux/amd64", "linux/amd64"]}, "listed twice"),
    ({"platforms": [f"linux/arch{n}" for n in range(9)]}, "9 platforms; the limit is 8"),
    # worker labels
    ({"worker_labels": [["region", "eu"]]}, "worker_labels must be an object"),
    ({"worker_labels": {"Region": "eu"}}, "worker label 'Region'"),
    ({"worker_labels": {"1a": "eu"}}, "worker label '1a'"),
    ({"worker_labels": {"": "eu"}}, "worker label ''"),
    ({"worker_labels": {"a" * 64: "eu"}}, "worker label"),
    ({"worker_labels": {"region": ""}}, "worker label region: the value '' must be 1 to 63"),
    ({"worker_labels": {"region": "e u"}}, "the value 'e u'"),
    ({"worker_labels": {"region": "v" * 64}}, "must be 1 to 63"),
    ({"worker_labels": {"region": 1}}, "the value <int>"),
    ({"worker_labels": {f"k{n}": "v" for n in range(5)}}, "5 worker labels; the limit is 4"),
])
def test_parse_rule_refuses(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rule({**BASE, **changes})


def test_a_missing_match_or_kind_or_tags() -> None:
    for key, message in (("match", "match is missing"), ("kind", "kind must be"), ("tags", "tags must be")):
        with pytest.raises(ValueError, match=message):
            parse_rule({k: v for k, v in BASE.items() if k != key})


@pytest.mark.parametrize("raw", [None, [], "rule", 5, [BASE]])
def test_a_rule_is_an_object(raw: Any) -> None:
    with pytest.raises(ValueError, match="a build rule must be an object"):
        parse_rule(raw)


def test_parse_rules() -> None:
    assert parse_rules([BASE, {**BASE, "kind": "tag"}]) == [parse_rule(BASE), parse_rule({**BASE, "kind": "tag"})]
    assert len(parse_rules([BASE] * 50)) == 50


@pytest.mark.parametrize(("raw", "message"), [
    ([], "a list of 1 to 50"), (None, "a list of 1 to 50"), (BASE, "a list of 1 to 50"),
    ([BASE] * 51, "51 build rules; the limit is 50"),
    ([BASE, {**BASE, "match": "("}], "^rule 2: match '\\(' is not a valid regular expression"),
    ([{**BASE, "kind": "x"}, BASE], "^rule 1: kind must be"),
    ([BASE, BASE, "x"], "^rule 3: a build rule must be an object"),
])
def test_parse_rules_refuses(raw: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rules(raw)


# --- webhooks: signatures ---

SECRET = "It's a Secret to Everybody"
BODY = b"Hello, World!"


def hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed(provider: str, secret: str = SECRET, body: bytes = BODY) -> dict[str, str]:
    """The headers each provider sends, computed the way its documentation says."""
    if provider == "github":  # X-Hub-Signature-256: sha256=<hex HMAC-SHA256>
        return {"X-Hub-Signature-256": "sha256=" + hex_hmac(secret, body)}
    if provider == "gitea":  # X-Gitea-Signature: <hex HMAC-SHA256>, no prefix
        return {"X-Gitea-Signature": hex_hmac(secret, body)}
    if provider == "gitlab":  # the secret token itself
        return {"X-Gitlab-Token": secret}
    if provider == "bitbucket":  # X-Hub-Signature: sha256=<hex HMAC-SHA256> (Cloud and Server)
        return {"X-Hub-Signature": "sha256=" + hex_hmac(secret, body)}
    return {"X-Dockyard-Signature-256": "sha256=" + hex_hmac(secret, body)}


def test_githubs_published_example() -> None:
    headers = {"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}
    assert verify("github", SECRET, headers, BODY)
    assert signed("github") == headers


@pytest.mark.parametrize("provider", builds.PROVIDERS)
def test_verify_accepts_the_providers_signature(provider: str) -> None:
    assert verify(provider, SECRET, signed(provider), BODY)


@pytest.mark.parametrize("provider", builds.PROVIDERS)
def test_verify_refuses_a_wrong_secret_a_tampered_body_and_a_missing_header(provider: str) -> None:
    assert not verify(provider, "another secret", signed(provider), BODY)
    assert not verify(provider, SECRET, signed(provider, secret="another secret"), BODY)
    assert not verify(provider, SECRET, {}, BODY)
    assert not verify(provider, SECRET, {"X-Other": "x"}, BODY)
    if provider != "gitlab":  # a token does not sign the body
        assert not verify(provider, SECRET, signed(provider), BODY + b" ")
        assert not verify(provider, SECRET, signed(provider, body=b"{}"), BODY)


@pytest.mark.parametrize("provider", builds.PROVIDERS)
def test_verify_refuses_an_empty_secret(provider: str) -> None:
    assert not verify(provider, "", signed(provider, secret=""), BODY)


def test_verify_refuses_an_unknown_provider() -> None:
    assert not verify("svn", SECRET, {**signed("github"), **signed("gitlab")}, BODY)


@pytest.mark.parametrize("provider", ["github", "gitea", "bitbucket", "git"])
def test_uppercase_hex_case_insensitive_names_and_spaces_are_accepted(provider: str) -> None:
    ((name, value),) = signed(provider).items()
    assert verify(provider, SECRET, {name.lower(): f"  {value.upper()} "}, BODY)
    assert verify(provider, SECRET, Headers(headers={name: value}), BODY)


def test_gitlab_token_is_compared_exactly_but_trimmed() -> None:
    assert verify("gitlab", SECRET, {"x-gitlab-token": f" {SECRET} "}, BODY)
    assert verify("gitlab", SECRET, Headers(headers={"X-Gitlab-Token": SECRET}), BODY)
    assert not verify("gitlab", SECRET, {"X-Gitlab-Token": SECRET.upper()}, BODY)
    assert not verify("gitlab", SECRET, {"X-Gitlab-Token": SECRET[:-1]}, BODY)
    assert verify("gitlab", "s\u00e9cret", {"X-Gitlab-Token": "s\u00e9cret"}, BODY)


def test_each_provider_wants_its_own_header_format() -> None:
    digest = hex_hmac(SECRET, BODY)
    assert not verify("gitea", SECRET, {"X-Gitea-Signature": "sha256=" + digest}, BODY)
    assert verify("gitea", SECRET, {"X-Forgejo-Signature": digest}, BODY)
    assert not verify("github", SECRET, {"X-Hub-Signature-256": digest}, BODY)
    assert not verify("github", SECRET, {"X-Hub-Signature": "sha256=" + digest}, BODY)  # the legacy SHA-1 header
    assert not verify("bitbucket", SECRET, {"X-Hub-Signature-256": "sha256=" + digest}, BODY)
    assert not verify("bitbucket", SECRET, {"X-Hub-Signature": digest}, BODY)
    assert verify("git", SECRET, {"X-Hub-Signature-256": "sha256=" + digest}, BODY)
    assert not verify("git", SECRET, {"X-Gitea-Signature": digest}, BODY)
    sha1 = "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    assert not verify("bitbucket", SECRET, {"X-Hub-Signature": sha1}, BODY)


def test_odd_header_values_are_refused_without_errors() -> None:
    for value in ("sha256=\u00e9\u00e9", "\ud800", "", "sha256="):
        assert not verify("github", SECRET, {"X-Hub-Signature-256": value}, BODY)
        assert not verify("gitlab", SECRET, {"X-Gitlab-Token": value}, BODY)


@pytest.mark.parametrize("provider", builds.PROVIDERS)
def test_verify_compares_in_constant_time(provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = hmac.compare_digest
    calls: list[tuple[Any, Any]] = []

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(builds.hmac, "compare_digest", spy)
    assert verify(provider, SECRET, signed(provider), BODY)
    assert calls
    calls.clear()
    assert not verify(provider, "wrong", signed(provider), BODY)
    assert calls


# --- webhooks: delivery ids and event kinds ---

UUID = "72d3162e-cc78-11e3-81ab-4c9367dc0958"


@pytest.mark.parametrize(("provider", "header"), [
    ("github", "X-GitHub-Delivery"), ("gitlab", "X-Gitlab-Event-UUID"), ("gitlab", "X-Gitlab-Webhook-UUID"),
    ("gitea", "X-Gitea-Delivery"), ("gitea", "X-Forgejo-Delivery"), ("bitbucket", "X-Request-UUID"),
    ("bitbucket", "X-Request-Id"),
])
def test_delivery_id(provider: str, header: str) -> None:
    assert delivery_id(provider, {header: UUID}) == UUID
    assert delivery_id(provider, {header.lower(): f" {UUID} "}) == UUID
    assert delivery_id(provider, {header.upper(): UUID}) == UUID
    assert delivery_id(provider, Headers(headers={header: UUID})) == UUID
    assert delivery_id(provider, {header: "x" * 200}) == "x" * 200
    assert delivery_id(provider, {header: "x" * 201}) is None
    assert delivery_id(provider, {header: ""}) is None
    assert delivery_id(provider, {header: "a\x00b"}) is None
    assert delivery_id(provider, {}) is None
    assert delivery_id("git", {header: UUID}) is None


@pytest.mark.parametrize(("provider", "headers", "expected"), [
    ("gitlab", {"X-Gitlab-Event-UUID": "a", "X-Gitlab-Webhook-UUID": "b"}, "a"),
    ("gitlab", {"X-Gitlab-Event-UUID": "x" * 300, "X-Gitlab-Webhook-UUID": "b"}, "b"),
    ("gitea", {"X-Gitea-Delivery": "a", "X-Forgejo-Delivery": "b"}, "a"),
    ("bitbucket", {"X-Request-UUID": "a", "X-Request-Id": "b"}, "a"),
    ("github", {"X-Gitea-Delivery": "a"}, None),
    ("svn", {"X-GitHub-Delivery": "a"}, None),
])
def test_delivery_id_preferences(provider: str, headers: dict[str, str], expected: str | None) -> None:
    assert delivery_id(provider, headers) == expected


@pytest.mark.parametrize(("provider", "headers", "kind"), [
    ("github", {"X-GitHub-Event": "push"}, "push"),
    ("github", {"x-github-event": "ping"}, "ping"),
    ("github", {"X-GitHub-Event": "create"}, "other"),
    ("github", {"X-GitHub-Event": "pull_request"}, "other"),
    ("github", {}, "other"),
    ("gitlab", {"X-Gitlab-Event": "Push Hook"}, "push"),
    ("gitlab", {"X-Gitlab-Event": "Tag Push Hook"}, "push"),
    ("gitlab", {"X-Gitlab-Event": "System Hook"}, "other"),
    ("gitlab", {"X-Gitlab-Event": "Merge Request Hook"}, "other"),
    ("gitea", {"X-Gitea-Event": "push"}, "push"),
    ("gitea", {"X-Forgejo-Event": "push"}, "push"),
    ("gitea", {"X-Gitea-Event": "create"}, "other"),
    ("gitea", {"X-Gitea-Event": "delete"}, "other"),
    ("bitbucket", {"X-Event-Key": "repo:push"}, "push"),
    ("bitbucket", {"X-Event-Key": "repo:refs_changed"}, "push"),
    ("bitbucket", {"X-Event-Key": "diagnostics:ping"}, "ping"),
    ("bitbucket", {"X-Event-Key": "pullrequest:created"}, "other"),
    ("git", {}, "push"),
    ("svn", {"X-GitHub-Event": "push"}, "other"),
])
def test_event_kind(provider: str, headers: dict[str, str], kind: str) -> None:
    assert event_kind(provider, headers) == kind
    assert event_kind(provider, Headers(headers=headers)) == kind


# --- webhooks: push payloads ---

def body(payload: Any) -> bytes:
    return json.dumps(payload).encode()


GITHUB_PUSH = {
    "ref": "refs/heads/main", "before": SHA2, "after": SHA, "created": False, "deleted": False, "forced": False,
    "base_ref": None, "compare": "https://github.com/octo/app/compare/89abcdef0123...0123456789ab",
    "commits": [{"id": SHA, "message": "Fix", "author": {"name": "Octo", "email": "octo@example.com"}}],
    "head_commit": {"id": SHA, "tree_id": SHA2, "message": "Fix", "timestamp": "2026-01-02T03:04:05Z"},
    "repository": {"id": 1, "full_name": "octo/app", "clone_url": "https://github.com/octo/app.git"},
    "pusher": {"name": "octo", "email": "octo@example.com"}, "sender": {"login": "octo"},
}
GITHUB_TAG = {**GITHUB_PUSH, "ref": "refs/tags/v1.2.3", "before": ZERO, "after": SHA2, "created": True,
              "base_ref": "refs/heads/main", "commits": []}  # annotated: "after" is the tag object
GITHUB_DELETE = {**GITHUB_PUSH, "ref": "refs/heads/old", "before": SHA, "after": ZERO, "created": False,
                 "deleted": True, "commits": [], "head_commit": None}
GITEA_PUSH = {
    "ref": "refs/heads/main", "before": SHA2, "after": SHA, "compare_url": "https://gitea.example.com/o/a/compare/x",
    "commits": [{"id": SHA, "message": "Fix\n", "url": "https://gitea.example.com/o/a/commit/" + SHA}],
    "total_commits": 1, "head_commit": {"id": SHA, "message": "Fix\n"},
    "repository": {"id": 3, "full_name": "o/a"}, "pusher": {"login": "o"}, "sender": {"login": "o"},
}
GITEA_DELETE = {**GITEA_PUSH, "ref": "refs/tags/v0", "before": SHA, "after": ZERO, "commits": [], "total_commits": 0,
                "head_commit": None}
GITLAB_PUSH = {
    "object_kind": "push", "event_name": "push", "before": SHA2, "after": SHA, "ref": "refs/heads/main",
    "ref_protected": True, "checkout_sha": SHA, "user_username": "jsmith", "project_id": 15,
    "project": {"id": 15, "path_with_namespace": "mike/diaspora"}, "commits": [{"id": SHA, "message": "Fix"}],
    "total_commits_count": 1, "repository": {"name": "Diaspora"},
}
GITLAB_TAG = {"object_kind": "tag_push", "event_name": "tag_push", "before": ZERO, "after": SHA2,
              "ref": "refs/tags/v1.0.0", "ref_protected": False, "checkout_sha": SHA, "project_id": 1, "commits": [],
              "total_commits_count": 0}
GITLAB_DELETE = {**GITLAB_PUSH, "before": SHA, "after": ZERO, "ref": "refs/heads/gone", "checkout_sha": None,
                 "commits": [], "total_commits_count": 0}


def cloud_state(kind: Any, name: Any, sha: str) -> dict[str, Any]:
    return {"type": kind, "name": name, "target": {"type": "commit", "hash": sha, "message": "Fix\n"},
            "links": {"html": {"href": f"https://bitbucket.org/team/app/branch/{name}"}}}


BITBUCKET_CLOUD = {
    "actor": {"display_name": "Ann"}, "repository": {"full_name": "team/app", "type": "repository"},
    "push": {"changes": [
        {"old": cloud_state("branch", "main", SHA2), "new": cloud_state("branch", "main", SHA),
         "created": False, "closed": False, "forced": False, "truncated": False, "commits": []},
        {"old": None, "new": cloud_state("tag", "v2.0", SHA), "created": True, "closed": False},
        {"old": cloud_state("branch", "feature/x", SHA2), "new": None, "created": False, "closed": True},
    ]},
}
BITBUCKET_SERVER = {
    "eventKey": "repo:refs_changed", "date": "2026-01-02T03:04:05+0000", "actor": {"name": "admin"},
    "repository": {"slug": "app", "project": {"key": "PRJ"}},
    "changes": [
        {"ref": {"id": "refs/heads/master", "displayId": "master", "type": "BRANCH"}, "refId": "refs/heads/master",
         "fromHash": SHA2, "toHash": SHA, "type": "UPDATE"},
        {"ref": {"id": "refs/tags/v1", "displayId": "v1", "type": "TAG"}, "refId": "refs/tags/v1",
         "fromHash": ZERO, "toHash": SHA2, "type": "ADD"},
        {"ref": {"id": "refs/heads/old", "displayId": "old", "type": "BRANCH"}, "refId": "refs/heads/old",
         "fromHash": SHA, "toHash": ZERO, "type": "DELETE"},
    ],
}


@pytest.mark.parametrize(("provider", "payload", "events"), [
    ("github", GITHUB_PUSH, [PushEvent("refs/heads/main", SHA, False)]),
    ("github", GITHUB_TAG, [PushEvent("refs/tags/v1.2.3", SHA, False)]),  # the commit, not the tag object
    ("github", {**GITHUB_TAG, "head_commit": None}, [PushEvent("refs/tags/v1.2.3", SHA2, False)]),
    ("github", GITHUB_DELETE, [PushEvent("refs/heads/old", ZERO, True)]),
    ("gitea", GITEA_PUSH, [PushEvent("refs/heads/main", SHA, False)]),
    ("gitea", GITEA_DELETE, [PushEvent("refs/tags/v0", ZERO, True)]),
    ("gitlab", GITLAB_PUSH, [PushEvent("refs/heads/main", SHA, False)]),
    ("gitlab", GITLAB_TAG, [PushEvent("refs/tags/v1.0.0", SHA, False)]),  # checkout_sha: the commit
    ("gitlab", {**GITLAB_PUSH, "checkout_sha": None}, [PushEvent("refs/heads/main", SHA, False)]),
    ("gitlab", GITLAB_DELETE, [PushEvent("refs/heads/gone", ZERO, True)]),
    ("bitbucket", BITBUCKET_CLOUD, [PushEvent("refs/heads/main", SHA, False), PushEvent("refs/tags/v2.0", SHA, False),
                                    PushEvent("refs/heads/feature/x", ZERO, True)]),
    ("bitbucket", {"push": {"changes": []}}, []),
    ("bitbucket", BITBUCKET_SERVER, [PushEvent("refs/heads/master", SHA, False), PushEvent("refs/tags/v1", SHA2, False),
                                     PushEvent("refs/heads/old", ZERO, True)]),
    ("git", {"ref": "refs/heads/main", "after": SHA}, [PushEvent("refs/heads/main", SHA, False)]),
    ("git", {"ref": "refs/tags/v1", "revision": SHA[:7]}, [PushEvent("refs/tags/v1", SHA[:7], False)]),
    ("git", {"ref": "refs/heads/x", "after": ZERO}, [PushEvent("refs/heads/x", ZERO, True)]),
    ("git", {"ref": "refs/heads/x", "after": SHA.upper()}, [PushEvent("refs/heads/x", SHA, False)]),
    ("git", {"ref": "refs/heads/" + "a" * 389, "after": SHA}, [PushEvent("refs/heads/" + "a" * 389, SHA, False)]),
])
def test_parse_push(provider: str, payload: Any, events: list[PushEvent]) -> None:
    assert parse_push(provider, body(payload)) == events


def test_a_pushed_tag_matches_rules() -> None:
    (event,) = parse_push("github", body(GITHUB_TAG))
    semver = rule(r"v(\d+)\.(\d+)\.(\d+)", ["${1}.${2}", "${1}.${2}.${3}", "${sha7}"], kind="tag")
    assert tags_for(semver, event.ref, event.revision) == ["1.2", "1.2.3", "0123456"]


@pytest.mark.parametrize(("provider", "raw"), [
    *[(p, raw) for p in builds.PROVIDERS for raw in (
        b"", b"not json", b"\xff\xfe\x00", b"[" * 100_000, b"{" * 50_000, b"[]", b"null", b"42", b'"push"', b"{}",
        b'{"ref": "refs/heads/main", "after": "' + SHA.encode() + b'"',
    )],
    ("github", body({**GITHUB_PUSH, "ref": 5})),
    ("github", body({**GITHUB_PUSH, "ref": "refs/pull/1/head"})),
    ("github", body({**GITHUB_PUSH, "ref": "main"})),
    ("github", body({**GITHUB_PUSH, "ref": "refs/heads/"})),
    ("github", body({**GITHUB_PUSH, "ref": "refs/heads/" + "a" * 390})),
    ("github", body({**GITHUB_PUSH, "head_commit": "x"})),
    ("github", body({**GITHUB_PUSH, "head_commit": {"id": "xyz"}})),
    ("github", body({**GITHUB_PUSH, "head_commit": {}})),
    ("github", body({**GITHUB_PUSH, "head_commit": None, "after": None})),
    ("github", body({**GITHUB_PUSH, "head_commit": None, "after": 123})),
    ("github", body({**GITHUB_PUSH, "deleted": "yes"})),
    ("gitea", body({**GITEA_PUSH, "after": SHA + "0" * 30, "head_commit": None})),
    ("gitea", body([GITEA_PUSH])),
    ("gitlab", body({**GITLAB_PUSH, "object_kind": "merge_request"})),
    ("gitlab", body({k: v for k, v in GITLAB_PUSH.items() if k != "object_kind"})),
    ("gitlab", body({**GITLAB_PUSH, "after": None})),
    ("gitlab", body({**GITLAB_PUSH, "checkout_sha": "nope"})),
    ("gitlab", body({**GITLAB_PUSH, "ref": "refs/merge-requests/1/head"})),
    ("bitbucket", body({"push": None})),
    ("bitbucket", body({"push": {"changes": None}})),
    ("bitbucket", body({"push": {"changes": {}}})),
    ("bitbucket", body({"push": {"changes": [None]}})),
    ("bitbucket", body({"push": {"changes": [{"new": None, "old": None}]}})),
    ("bitbucket", body({"push": {"changes": [{"new": cloud_state("named_branch", "x", SHA)}]}})),
    ("bitbucket", body({"push": {"changes": [{"new": cloud_state("branch", "", SHA)}]}})),
    ("bitbucket", body({"push": {"changes": [{"new": cloud_state("branch", ["x"], SHA)}]}})),
    ("bitbucket", body({"push": {"changes": [{"new": {**cloud_state("branch", "x", SHA), "target": None}}]}})),
    ("bitbucket", body({"push": {"changes": [{"new": cloud_state("branch", "x", "zz")}]}})),
    ("bitbucket", body({"push": {"changes": [{"new": cloud_state([], "x", SHA)}]}})),
    ("bitbucket", body({"changes": [{"ref": None, "toHash": SHA}]})),
    ("bitbucket", body({"changes": [{"ref": {"id": "refs/pull-requests/1/from"}, "toHash": SHA}]})),
    ("bitbucket", body({"changes": [{"ref": {"id": "refs/heads/x"}}]})),
    ("bitbucket", body({"changes": "x"})),
    ("git", body({"ref": "refs/heads/main"})),
    ("git", body({"after": SHA})),
    ("git", body({"ref": "refs/heads/main", "revision": "HEAD"})),
])
def test_parse_push_refuses_garbage_with_value_errors(provider: str, raw: bytes) -> None:
    with pytest.raises(ValueError):
        parse_push(provider, raw)


def test_parse_push_refuses_an_unknown_provider() -> None:
    with pytest.raises(ValueError, match="unknown provider"):
        parse_push("svn", body(GITHUB_PUSH))


def test_matching_takes_linear_time_whatever_the_expression() -> None:
    """Rules are matched while a provider's webhook request waits: RE2, not Python's backtracking
    `re`, for which `(a+)+b` against 390 a's would never end."""
    import time

    rule = builds.parse_rule({"kind": "branch", "match": "(a+)+b", "tags": ["x"]})
    started = time.monotonic()
    assert builds.tags_for(rule, "refs/heads/" + "a" * 390, "a" * 40) is None
    assert time.monotonic() - started < 10.0  # a hang detector, not a speed measure: backtracking takes ages


def test_expressions_re2_cannot_run_are_refused() -> None:
    with pytest.raises(ValueError, match="RE2"):
        builds.parse_rule({"kind": "branch", "match": r"(a)\1", "tags": ["x"]})
