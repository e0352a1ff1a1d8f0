"""OCI registry semantics over the blob store and the metadata: uploads, blobs, manifests, tags,
referrers, garbage collection. Raises core errors, never HTTP ones."""
