"""HTTP edges: the registry API (/v2), the token endpoint (/auth/token). The only package that
knows about Starlette and HTTP status codes."""
