"""Digest parsing and computing."""

from __future__ import annotations

import hashlib

import pytest

from dockyard.core.digest import SUPPORTED_ALGORITHMS, Digest, is_digest, new_hasher
from dockyard.core.errors import DigestInvalid

HEX256 = hashlib.sha256(b"x").hexdigest()
HEX512 = hashlib.sha512(b"x").hexdigest()


def test_parse_sha256() -> None:
    d = Digest.parse(f"sha256:{HEX256}")
    assert (d.algorithm, d.encoded) == ("sha256", HEX256)
    assert str(d) == f"sha256:{HEX256}"


def test_parse_sha512() -> None:
    d = Digest.parse(f"sha512:{HEX512}")
    assert (d.algorithm, d.encoded) == ("sha512", HEX512)


def test_supported_algorithms() -> None:
    assert SUPPORTED_ALGORITHMS == ("sha256", "sha512")


@pytest.mark.parametrize("text", [
    "", "sha256", "sha256:", ":" + HEX256, f"sha256:{HEX256.upper()}", f"sha256:{HEX256[:-1]}", f"sha256:{HEX256}0",
    f"sha256:{HEX512}", f"sha512:{HEX256}", f"SHA256:{HEX256}", f"sha256 :{HEX256}", f"sha256: {HEX256}",
    f"sha256:{HEX256}\n", f"\nsha256:{HEX256}", f"sha256:{HEX256} ", f"sha256:{HEX256[:-1]}g",
    f"sha256:{HEX256[:-2]}\u0661\u0662", f"sha256::{HEX256}", f"sha256:{HEX256}:x", "latest", "a" * 1000,
])
def test_malformed(text: str) -> None:
    with pytest.raises(DigestInvalid) as exc:
        Digest.parse(text)
    assert exc.value.code == "DIGEST_INVALID"
    assert exc.value.message


@pytest.mark.parametrize("text", ["md5:" + "0" * 32, "sha1:" + "a" * 40, "sha384:" + "b" * 96, "blake3:" + "c" * 64,
                                  "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564", "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"])
def test_unsupported_algorithms(text: str) -> None:
    with pytest.raises(DigestInvalid, match="unsupported digest algorithm"):
        Digest.parse(text)


def test_error_detail_is_bounded() -> None:
    with pytest.raises(DigestInvalid) as exc:
        Digest.parse("x" * 10_000)
    assert len(exc.value.message) < 400
    assert len(exc.value.detail["digest"]) <= 200


def test_of() -> None:
    assert Digest.of(b"x") == Digest("sha256", HEX256)
    assert Digest.of(b"x", "sha512") == Digest("sha512", HEX512)
    assert str(Digest.of(b"")) == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_round_trip() -> None:
    d = Digest.of(b"hello", "sha512")
    assert Digest.parse(str(d)) == d


def test_is_digest() -> None:
    assert is_digest(f"sha256:{HEX256}")
    assert is_digest("md5:abc")  # looks like one, so it gets a DIGEST_INVALID rather than a tag error
    assert not is_digest("latest")
    assert not is_digest("v1.0_rc-2")


def test_new_hasher() -> None:
    h = new_hasher("sha512")
    h.update(b"x")
    assert h.hexdigest() == HEX512
