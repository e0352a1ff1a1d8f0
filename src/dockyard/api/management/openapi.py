"""The OpenAPI 3.1 document of the management API, built from the route table (`Endpoint`s) and
the pydantic models they name: nothing here is written by hand per endpoint."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from dockyard import __version__
from dockyard.api.management.schemas import ErrorBody
from dockyard.management.errors import NotFound

PREFIX = "/api/v1"
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
REF = "#/components/schemas/{model}"

ERROR_STATUSES = {
    401: "Not authenticated: no or bad credentials.",
    403: "Authenticated, but not allowed.",
    404: "No such object (or not visible to the caller).",
    409: "Conflicts with the current state.",
    415: "The request is not `Content-Type: application/json`.",
    422: "Invalid input.",
    429: "Too many failed logins; see Retry-After.",
}


def path_id(value: str, what: str) -> int:
    """A numeric id from the path (job, webhook, allowlist entry): anything else is that thing not found."""
    if not value.isdigit() or len(value) > 18:
        raise NotFound(f"{what} {value} not found")
    return int(value)


@dataclass(frozen=True)
class Endpoint:
    """One operation: the route table that builds both the Starlette routes and this document."""

    method: str
    path: str  # relative to /api/v1, Starlette syntax: /repositories/{name:path}
    handler: Callable[..., Any]
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    auth: bool = True
    content_type: str = "application/json"  # of a successful answer
    params: tuple[tuple[str, str], ...] = ()  # descriptions of the path parameters
    # Also registry credentials (robots, temporary passwords, the fixed registry password), whose
    # repository permissions the use-case applies: the scan reports `dockyard scan` reads in CI.
    registry_credentials: bool = False
    # A route of its own for an operation that reads the raw request (a provider's signed
    # webhook); documented here like the others.
    route: Any = None

    @property
    def operation_id(self) -> str:
        return self.handler.__name__.lstrip("_")

    @property
    def takes_json(self) -> bool:
        """Whether the request must be application/json: every one that changes something (a POST
        without a body too), so that no cross-site form or text/plain request gets through."""
        return self.body is not None or self.method == "POST"

    @property
    def openapi_path(self) -> str:
        return PREFIX + _PARAM.sub(r"{\1}", self.path)

    @property
    def path_params(self) -> list[str]:
        return _PARAM.findall(self.path)


def _schemas(endpoints: list[Endpoint]) -> tuple[dict[tuple[type[BaseModel], str], dict[str, Any]], dict[str, Any]]:
    models: list[tuple[type[BaseModel], Any]] = [(ErrorBody, "serialization")]
    for e in endpoints:
        if e.body is not None:
            models.append((e.body, "validation"))
        if e.response is not None:
            models.append((e.response, "serialization"))
    unique = list(dict.fromkeys(models))
    refs, top = models_json_schema(unique, ref_template=REF)
    return refs, top.get("$defs", {})  # type: ignore[return-value]


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            param["description"] = description
        out.append(param)
    return out


def _tag_descriptions() -> list[dict[str, str]]:
    return [
        {"name": "namespaces", "description": "Namespaces and their members. The creator of a namespace is its owner."},
        {"name": "repositories", "description": "Repositories `namespace/name`, their settings and tags."},
        {"name": "credentials", "description": "The caller's passwords for `docker login`: fixed and temporary."},
        {"name": "robots", "description": "Robot accounts of a namespace, for CI: `robot$NAMESPACE+NAME`."},
        {"name": "users", "description": "User accounts (administrators) and the caller's identity."},
        {"name": "audit", "description": "Who did what, when and from where."},
        {"name": "jobs", "description": "Background jobs (garbage collection, purges…): progress, results, errors, cancel."},
        {"name": "webhooks", "description": "Webhooks of a namespace: signed POSTs (Standard Webhooks) to deployers when "
         "images are pushed or deleted and scans finish; every delivery attempt logged, redelivery."},
        {"name": "builds", "description": "Automated builds of a repository from its code source: configuration, "
         "provider webhooks, builds, live logs, cancel."},
        {"name": "reference", "description": "This document and its HTML rendering."},
    ]


def build_openapi(endpoints: list[Endpoint]) -> dict[str, Any]:
    refs, defs = _schemas(endpoints)
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        op: dict[str, Any] = {"operationId": e.operation_id, "summary": e.summary, "tags": [e.tag]}
        doc = (e.handler.__doc__ or "").strip()
        if doc:
            op["description"] = " ".join(doc.split())
        descriptions = dict(e.params)
        params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"},
                   **({"description": descriptions[p]} if p in descriptions else {})} for p in e.path_params]
        if e.query is not None:
            params += _query_parameters(e.query)
        if params:
            op["parameters"] = params
        if e.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": refs[(e.body, "validation")]}}}
        elif e.takes_json:
            op["requestBody"] = {"required": False, "description": "Empty, or `{}`; sent as application/json.",
                                 "content": {"application/json": {"schema": {"type": "object", "maxProperties": 0}}}}
        responses: dict[str, Any] = {}
        if e.response is not None:
            responses[str(e.status)] = {"description": "Created." if e.status == 201 else "Success.",
                                        "content": {"application/json": {"schema": refs[(e.response, "serialization")]}}}
        elif e.status == 204:
            responses["204"] = {"description": "Done; no body."}
        else:
            responses[str(e.status)] = {"description": "Success.", "content": {e.content_type: {"schema": {"type": "string"}}}}
        error = {"content": {"application/json": {"schema": refs[(ErrorBody, "serialization")]}}}
        for status, text in ERROR_STATUSES.items():
            if not e.auth and status in (401, 403, 429):
                continue
            if status == 409 and e.method == "GET":
                continue
            if status == 415 and not e.takes_json:
                continue
            responses[str(status)] = {"description": text, **error}
        op["responses"] = responses
        if e.auth:
            op["security"] = [{"basic": []}, {"bearer": []}]
        else:
            op["security"] = []
        paths.setdefault(e.openapi_path, {})[e.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Dockyard management API",
            "version": __version__,
            "description": "Namespaces, repositories, members, robot accounts, registry passwords, users and the "
                           "audit log. Lists are pages `{items, next}`: pass `next` back as `after` (or `before` "
                           "for the audit log). Errors are `{error: {code, message}}`. Requests that change "
                           "something are `Content-Type: application/json` (415 otherwise). Authenticate with "
                           "Basic (the account password) or a Bearer management token, asked for at "
                           "`/auth/token?scope=management` (registry tokens are refused). Only the account "
                           "password may change things; robots and temporary passwords limited to some "
                           "repositories or actions may only call `GET /user`.",
        },
        "servers": [{"url": "/"}],
        "tags": _tag_descriptions(),
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic", "description": "Username and account password."},
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "A management token: GET /auth/token?service=SERVICE&scope=management "
                                          "with Basic credentials (or the OAuth2 password grant). Registry "
                                          "access tokens are refused."},
            },
        },
    }
