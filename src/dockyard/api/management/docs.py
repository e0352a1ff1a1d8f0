"""A browsable HTML reference of the management API, rendered from its OpenAPI document (no
JavaScript, no external assets)."""

from __future__ import annotations

import json
from html import escape
from typing import Any

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330}
header{background:#16324f;color:#fff;padding:1rem 2rem}header p{margin:.3rem 0 0;opacity:.85}
nav{position:fixed;top:0;bottom:0;left:0;width:17rem;overflow:auto;background:#f3f5f8;padding:1rem;box-sizing:border-box}
nav a{display:block;color:#16324f;text-decoration:none;font-size:13px;padding:1px 0}nav h3{margin:.8rem 0 .2rem;font-size:13px;text-transform:uppercase}
main{margin-left:17rem}section{padding:0 2rem}.op{border:1px solid #dde2ea;border-radius:6px;margin:1rem 0;padding:.6rem 1rem}
.m{display:inline-block;min-width:4.2rem;font-weight:700;font-family:monospace}.GET{color:#1c7c3a}.POST{color:#1f5fbf}
.PUT{color:#a66b00}.PATCH{color:#7a3fb0}.DELETE{color:#b3261e}code,pre{font-family:ui-monospace,monospace;font-size:13px}
pre{background:#f6f8fa;padding:.5rem;overflow:auto}table{border-collapse:collapse;margin:.3rem 0}
td,th{border:1px solid #dde2ea;padding:2px 8px;text-align:left;vertical-align:top;font-size:13px}
"""

METHOD_ORDER = ["get", "post", "put", "patch", "delete"]


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _type(schema: dict[str, Any]) -> str:
    """A short, linked description of a JSON schema's type."""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f'<a href="#schema-{escape(name)}">{escape(name)}</a>'
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(f"<code>{escape(json.dumps(v))}</code>" for v in schema["enum"])
    if "const" in schema:
        return f"<code>{escape(json.dumps(schema['const']))}</code>"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
        return f"object of {_type(schema['additionalProperties'])}"
    fmt = schema.get("format")
    return escape(f"{kind} ({fmt})" if fmt else str(kind))


def _constraints(schema: dict[str, Any]) -> str:
    keys = ("minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems")
    parts = [f"{k} {schema[k]}" for k in keys if k in schema]
    if "default" in schema:
        parts.append(f"default {json.dumps(schema['default'])}")
    return escape(", ".join(parts))


def _schema_table(schema: dict[str, Any]) -> str:
    props = schema.get("properties", {})
    if not props:
        return f"<p>{_type(schema)}</p>"
    required = set(schema.get("required", []))
    rows = "".join(
        f"<tr><td><code>{escape(name)}</code>{' *' if name in required else ''}</td><td>{_type(p)}</td>"
        f"<td>{_constraints(p)}</td><td>{escape(p.get('description', ''))}</td></tr>"
        for name, p in props.items())
    return f"<table><tr><th>field</th><th>type</th><th>limits</th><th></th></tr>{rows}</table>"


def render_docs(doc: dict[str, Any]) -> str:
    info = doc["info"]
    tags = [t["name"] for t in doc.get("tags", [])]
    tag_text = {t["name"]: t.get("description", "") for t in doc.get("tags", [])}
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {t: [] for t in tags}
    for path, ops in doc["paths"].items():
        for method in sorted(ops, key=METHOD_ORDER.index):
            op = ops[method]
            by_tag.setdefault(op["tags"][0], []).append((method.upper(), path, op))
    nav, body = [], []
    for tag, ops in by_tag.items():
        if not ops:
            continue
        nav.append(f"<h3>{escape(tag)}</h3>")
        body.append(f'<section><h2 id="tag-{escape(tag)}">{escape(tag)}</h2><p>{escape(tag_text.get(tag, ""))}</p>')
        for method, path, op in ops:
            anchor = escape(op["operationId"])
            nav.append(f'<a href="#{anchor}"><span class="m {method}">{method}</span> {escape(path)}</a>')
            parts = [f'<div class="op" id="{anchor}"><h3><span class="m {method}">{method}</span> '
                     f"<code>{escape(path)}</code> — {escape(op.get('summary', ''))}</h3>"]
            if op.get("description"):
                parts.append(f"<p>{escape(op['description'])}</p>")
            if not op.get("security"):
                parts.append("<p><em>No authentication needed.</em></p>")
            if op.get("parameters"):
                rows = "".join(
                    f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td><td>{_type(p['schema'])}</td>"
                    f"<td>{_constraints(p['schema'])}</td><td>{escape(p.get('description', ''))}</td></tr>"
                    for p in op["parameters"])
                parts.append(f"<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th>limits</th>"
                             f"<th></th></tr>{rows}</table>")
            if "requestBody" in op:
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                parts.append(f"<h4>Body</h4><p>{_type(schema)}</p>")
            rows = "".join(
                f"<tr><td>{escape(status)}</td><td>{escape(r['description'])}</td>"
                f"<td>{_type(next(iter(r['content'].values()))['schema']) if r.get('content') else ''}</td></tr>"
                for status, r in op["responses"].items())
            parts.append(f"<h4>Responses</h4><table>{rows}</table></div>")
            body.append("".join(parts))
        body.append("</section>")
    nav.append("<h3>schemas</h3>")
    body.append('<section><h2 id="schemas">Schemas</h2>')
    for name, schema in doc["components"]["schemas"].items():
        nav.append(f'<a href="#schema-{escape(name)}">{escape(name)}</a>')
        body.append(f'<div class="op" id="schema-{escape(name)}"><h3>{escape(name)}</h3>'
                    f"<p>{escape(schema.get('description', ''))}</p>{_schema_table(schema)}</div>")
    body.append("</section>")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(info['title'])}</title>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{_STYLE}</style></head><body>"
            f"<nav>{''.join(nav)}</nav><main><header><h1>{escape(info['title'])} {escape(info['version'])}</h1>"
            f"<p>{escape(info.get('description', ''))}</p><p><a style='color:#fff' href='openapi.json'>openapi.json</a>"
            f"</p></header>{''.join(body)}</main></body></html>")
