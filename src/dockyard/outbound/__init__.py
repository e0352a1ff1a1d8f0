"""Requests the registry makes for users (webhooks now; clone URLs and proxy upstreams later):
guard.py decides which addresses they may reach, client.py makes them checked, pinned and bounded.
With api/, the only package that imports an HTTP client."""
