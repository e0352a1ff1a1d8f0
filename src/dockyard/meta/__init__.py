"""Metadata: users, repositories, blobs, manifests, tags and upload sessions, in SQL."""
