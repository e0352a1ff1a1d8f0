"""Blob bytes: the content-addressed store and the upload staging area."""
