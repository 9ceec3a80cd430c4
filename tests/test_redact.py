"""receiver.redact: what may be shown of a secret, and of a URL that can hold one."""

from __future__ import annotations

import pytest

from receiver import redact


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "(not set)"),
        ("", "(not set)"),
        ("x", "set (1 chars)"),
        ("whsec-Zq9-a-long-secret", "set (23 chars)"),
    ],
)
def test_a_secret_is_shown_only_as_its_length(value: str | None, shown: str) -> None:
    assert redact.secret(value) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://user:pass@host/db", "postgresql://user:****@host/db"),
        ("postgresql://user:p@ss@host:5432/db", "postgresql://user:****@host:5432/db"),
        ("postgresql://user:pa/ss@host/db", "postgresql://user:****@host/db"),
        ("postgresql://user:pa?ss@host/db", "postgresql://user:****@host/db"),
        ("postgresql://host/db?user=u&password=pw", "postgresql://host/db?user=u&password=****"),
        ("https://h/x?apikey=k1&sig=s1&page=2#top", "https://h/x?apikey=****&sig=****&page=2#top"),
        ("mailto://u:pw@gmail.com?to=a@b.com", "mailto://u:****@gmail.com?to=a@b.com"),
        ("https://user@host/path/@me", "https://user@host/path/@me"),  # no password
        ("https://app.qualitymax.io", "https://app.qualitymax.io"),
        ("json://127.0.0.1:8080/hook", "json://127.0.0.1:8080/hook"),
        ("data/receiver.db", "data/receiver.db"),
        (":memory:", ":memory:"),
        ("http://[::1/x", "http://****"),  # unparseable: only the scheme
    ],
)
def test_a_url_keeps_all_but_its_secrets(url: str, shown: str) -> None:
    assert redact.url(url) == shown
