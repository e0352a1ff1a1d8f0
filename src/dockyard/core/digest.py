"""Content digests (`algorithm:encoded`), as the OCI image spec defines them.

sha256 and sha512 are supported. Any other well-formed algorithm is refused with a clear
`DIGEST_INVALID` message rather than treated as unknown content.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from dockyard.core.errors import DigestInvalid

# OCI image-spec descriptor grammar.
_DIGEST_RE = re.compile(r"^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")
_ENCODED = {"sha256": re.compile(r"^[a-f0-9]{64}$"), "sha512": re.compile(r"^[a-f0-9]{128}$")}
SUPPORTED_ALGORITHMS = tuple(_ENCODED)


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    encoded: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"

    @classmethod
    def parse(cls, text: str) -> "Digest":
        """Parse and validate; raises DigestInvalid for bad syntax or an unsupported algorithm."""
        m = _DIGEST_RE.fullmatch(text or "")  # fullmatch: `$` alone lets a trailing newline through
        if not m:
            raise DigestInvalid(f"invalid digest {text[:200]!r}: expected algorithm:hex", {"digest": text[:200]})
        algorithm, encoded = m.group(1), m.group(2)
        pattern = _ENCODED.get(algorithm)
        if pattern is None:
            raise DigestInvalid(
                f"unsupported digest algorithm {algorithm!r}: use one of {', '.join(SUPPORTED_ALGORITHMS)}",
                {"digest": text[:200]},
            )
        if not pattern.fullmatch(encoded):
            raise DigestInvalid(
                f"invalid {algorithm} digest: expected {64 if algorithm == 'sha256' else 128} lowercase hex characters",
                {"digest": text[:200]},
            )
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> "Digest":
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())


def is_digest(reference: str) -> bool:
    """True when a manifest reference looks like a digest rather than a tag."""
    return ":" in reference


def new_hasher(algorithm: str) -> "hashlib._Hash":
    return hashlib.new(algorithm)
