"""The OCI Distribution / Docker Registry HTTP API v2."""
