"""The management REST API under /api/v1 (routes, schemas, OpenAPI document, HTML reference)."""
