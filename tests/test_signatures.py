"""Signatures as QualityMax's document computes them, and the properties the check must keep."""

import hashlib
import hmac
import shutil
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from receiver.demo import seed_callback
from receiver.signatures import sign, verify

SECRET = "your-webhook-secret"
needs_openssl = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="the openssl command is not installed"
)


def documented_verify(body: bytes, secret: str, signature: str) -> bool:
    """The Python example of the partner API document, verbatim."""
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"sha256={expected}", signature)


def openssl_signature(body: bytes, secret: str) -> str:
    """The document's shell example: openssl dgst -sha256 -hmac SECRET | cut -d' ' -f2."""
    out = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", secret], input=body, capture_output=True, check=True
    ).stdout.decode()
    return "sha256=" + out.strip().split(" ")[-1]


@needs_openssl
def test_seed_callback_signed_like_the_documents_examples() -> None:
    body = seed_callback()
    assert documented_verify(body, SECRET, sign(body, SECRET))
    assert sign(body, SECRET) == openssl_signature(body, SECRET)
    assert verify(body, openssl_signature(body, SECRET), [SECRET])


@needs_openssl
def test_documents_curl_body() -> None:
    body = (
        b'{"url":"https://preview.app.com","feature_description":"Test login",'
        b'"callback_url":"https://api.you.com/results"}'
    )
    assert verify(body, openssl_signature(body, SECRET), [SECRET])


def test_malformed_headers_are_refused() -> None:
    body = seed_callback()
    digest = sign(body, SECRET).removeprefix("sha256=")
    sha1 = hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    for header in (
        None,
        "",
        digest,
        f"sha1={sha1}",
        f"sha256={digest[:-1]}",
        "sha256=" + "z" * 64,
        f"SHA256={digest}",
        f" sha256={digest}",
    ):
        assert not verify(body, header, [SECRET]), header


def test_uppercase_hex_is_the_same_digest() -> None:
    body = seed_callback()
    assert verify(body, "sha256=" + sign(body, SECRET)[7:].upper(), [SECRET])


def test_no_secret_configured_refuses_everything() -> None:
    body = b"{}"
    assert not verify(body, sign(body, ""), [])


@given(body=st.binary(max_size=2048), secret=st.text(min_size=1, max_size=64))
def test_a_signature_verifies_its_body(body: bytes, secret: str) -> None:
    assert verify(body, sign(body, secret), [secret])


@given(
    body=st.binary(min_size=1, max_size=512),
    secret=st.text(min_size=1, max_size=32),
    position=st.integers(min_value=0),
    flip=st.integers(min_value=1, max_value=255),
)
def test_any_changed_byte_is_refused(body: bytes, secret: str, position: int, flip: int) -> None:
    changed = bytearray(body)
    changed[position % len(body)] ^= flip
    assert not verify(bytes(changed), sign(body, secret), [secret])


@given(
    body=st.binary(max_size=256),
    secret=st.text(min_size=1, max_size=32),
    other=st.text(min_size=1, max_size=32),
)
def test_another_secret_is_refused(body: bytes, secret: str, other: str) -> None:
    if other != secret:
        assert not verify(body, sign(body, other), [secret])


@given(
    body=st.binary(max_size=256),
    secrets=st.lists(st.text(min_size=1, max_size=16), min_size=1, max_size=5, unique=True),
    data=st.data(),
)
def test_any_secret_of_the_rotation_list_verifies(
    body: bytes, secrets: list[str], data: st.DataObject
) -> None:
    chosen = data.draw(st.sampled_from(secrets))
    assert verify(body, sign(body, chosen), secrets)
