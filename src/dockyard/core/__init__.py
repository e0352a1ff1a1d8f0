"""Pure domain code: digests, names, manifests, scopes and errors. No I/O, no framework."""
