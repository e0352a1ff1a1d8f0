import json, hashlib, os, statistics
DATA_DIR = "/tmp/stackbench/data"
BLOB = "/tmp/stackbench/blob512m"
MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 1469,
               "digest": "sha256:" + "a" * 64},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 3623807,
                "digest": "sha256:" + "b" * 64},
               {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 1234,
                "digest": "sha256:" + "c" * 64}],
}
MANIFEST_BODY = json.dumps(MANIFEST).encode()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST_BODY).hexdigest()
MANIFEST_CT = "application/vnd.oci.image.manifest.v1+json"
STORE = {"latest": (MANIFEST_BODY, MANIFEST_DIGEST)}  # in-memory dict
LAST_CHUNKS = {}

def record_chunks(sizes):
    s = sorted(sizes)
    LAST_CHUNKS.clear()
    LAST_CHUNKS.update(n=len(s), min=s[0] if s else 0, median=statistics.median(s) if s else 0,
                       max=s[-1] if s else 0, pid=os.getpid())
