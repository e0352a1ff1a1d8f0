"""Blob storage: the `BlobStore` seam (base.py) and its backends, local disk (fs.py) and
S3-compatible object stores (s3.py). app.py picks one from the settings."""
