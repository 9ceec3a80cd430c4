"""Partner text in each medium: tables of hostile inputs with the exact text each function gives,
then what the real renderers make of it: a CommonMark renderer (markdown-it, raw HTML allowed as
GitHub allows it), Apprise's own Slack conversion, HTML unescaping."""

from __future__ import annotations

import html
from collections.abc import Callable

import pytest
from apprise.plugins.slack import NotifySlack
from markdown_it import MarkdownIt

from receiver.notify import escape
from receiver.notify.message import clip

Z = escape.ZWJ
GRAVE = "\u02cb"

# Everything a partner might put in a test name, an error, a branch or a deploy id.
HOSTILE = [
    "<!channel> please look",
    "<!here> <!everyone> <!subteam^SAZ94GDB8|@oncall>",
    "<@U024BE7LH> and <#C024BE7LR>",
    "@acme/everyone and @octocat",
    "</details><script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "<!-- receiver:result 999999 -->",
    "[click me](https://evil.example) ![x](javascript:alert(1))",
    "<https://evil.example|click> <javascript:alert(1)>",
    "**bold** *it* _it_ ~~gone~~ `code` $x^2$",
    "a | b || c",
    "# heading",
    "- item",
    "+ item",
    "1. first",
    "2) second",
    "> quote",
    "=== setext",
    "&#64;acme/team &lt;!channel&gt; &amp;",
    "C:\\dir\\<b> and \\[not a link\\](x)",
    "fixes #12 and acme/shop#7",
    "line one\nline two\r\n\t# not a heading\u2028- nor a list",
    "evil\u202egnp.exe",
    "ci@example.com wrote",
    "1 < 2 > 0 & a @ b",
    "  padded  ",
    "Login and Dashboard Verification",
]


def rendered_markdown(text: str) -> str:
    """What a CommonMark renderer shows of ``text``: its HTML, the one paragraph's tags off."""
    out = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(text)
    assert out.startswith("<p>") and out.endswith("</p>\n"), out
    inner = out.removeprefix("<p>").removesuffix("</p>\n")
    assert "<" not in inner, f"markup got through: {inner!r}"
    return html.unescape(inner)


def slack_shows(mrkdwn: str) -> str:
    """The text Slack shows for mrkdwn without links: it decodes exactly these three."""
    assert "<" not in mrkdwn and ">" not in mrkdwn, f"a Slack control character: {mrkdwn!r}"
    return mrkdwn.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# -- one function per medium: exact outputs ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<!channel> please look", f"<{Z}!channel> please look"),
        ("<@U024BE7LH>", f"<{Z}@{Z}U024BE7LH>"),
        ("<#C024BE7LR>", f"<{Z}#C024BE7LR>"),
        ("<!subteam^SAZ94GDB8>", f"<{Z}!subteam^SAZ94GDB8>"),
        ("@acme/everyone", f"@{Z}acme/everyone"),
        ("ci@example.com", f"ci@{Z}example.com"),
        ("</details><script>", f"<{Z}/details><{Z}script>"),
        ("<!-- c -->", f"<{Z}!-- c -->"),
        ("fixes #12", f"fixes #{Z}12"),
        ("1 < 2 > 0 & a @ b #x", "1 < 2 > 0 & a @ b #x"),
        ("line one\nline two\r\n\tthree\u2028four", "line one line two three four"),
        ("evil\u202egnp.exe", "evilgnp.exe"),
        ("  padded  ", "padded"),
        ("**bold** [x](y) `c`", "**bold** [x](y) `c`"),
    ],
)
def test_plain(text: str, expected: str) -> None:
    assert escape.plain(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<!channel>", rf"\<{Z}!channel\>"),
        ("@acme/everyone", f"@{Z}acme/everyone"),
        ("</details><script>", rf"\<{Z}/details\>\<{Z}script\>"),
        ("[click](https://evil.example)", r"\[click\](https://evil.example)"),
        ("![x](javascript:alert(1))", r"!\[x\](javascript:alert(1))"),
        ("**b** _i_ ~~s~~ `c` $m$", r"\*\*b\*\* \_i\_ \~\~s\~\~ \`c\` \$m\$"),
        ("a | b", r"a \| b"),
        ("# heading", r"\# heading"),
        ("- item", r"\- item"),
        ("+ item", r"\+ item"),
        ("=== setext", r"\=== setext"),
        ("12. first", r"12\. first"),
        ("2) second", r"2\) second"),
        ("> quote", r"\> quote"),
        ("&#64;team", rf"\&#{Z}64;team"),
        ("back\\slash", r"back\\slash"),
        ("test_login_flow #pay", r"test\_login\_flow #pay"),
        ("Expected dashboard, got /login", "Expected dashboard, got /login"),
    ],
)
def test_markdown(text: str, expected: str) -> None:
    assert escape.markdown(text) == expected


@pytest.mark.parametrize(
    ("text", "expected", "mrkdwn"),
    [
        ("<!channel>", rf"\<{Z}!channel\>", f"&lt;{Z}!channel&gt;"),
        ("<@U024BE7LH>", rf"\<{Z}@{Z}U024BE7LH\>", f"&lt;{Z}@{Z}U024BE7LH&gt;"),
        ("a & b", "a & b", "a &amp; b"),
        ("&lt;!here&gt;", "&lt;!here&gt;", "&amp;lt;!here&amp;gt;"),
        ("[click](https://evil.example)", r"\[click\](https://evil.example)", None),
        ("<https://evil.example|x>", rf"\<{Z}https://evil.example|x\>", None),
        ("# heading", r"\# heading", "# heading"),
        ("`code` here", f"{GRAVE}code{GRAVE} here", None),
        ("C:\\dir\\<b>", rf"C:\{Z}dir\{Z}\<{Z}b\>", rf"C:\{Z}dir\{Z}&lt;{Z}b&gt;"),
        ("test_login_flow", "test_login_flow", "test_login_flow"),
    ],
)
def test_slack(text: str, expected: str, mrkdwn: str | None) -> None:
    escaped = escape.slack(text)
    assert escaped == expected
    # What Apprise's Slack plugin makes of it is what reaches Slack.
    converted = NotifySlack._commonmark_to_slack(  # type: ignore[no-untyped-call]
        escaped
    )
    if mrkdwn is not None:
        assert converted == mrkdwn
    slack_shows(converted)  # no "<" or ">": neither a mention nor a link


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<!channel>", f"&lt;{Z}!channel&gt;"),
        ("</details><script>alert('x')</script>", f"&lt;{Z}/details&gt;&lt;{Z}script&gt;"
         f"alert(&#x27;x&#x27;)&lt;{Z}/script&gt;"),
        ('<img src=x onerror="alert(1)">', f"&lt;{Z}img src=x onerror=&quot;alert(1)&quot;&gt;"),
        ("@acme/everyone & co", f"@{Z}acme/everyone &amp; co"),
        ("&amp;", "&amp;amp;"),
    ],
)  # fmt: skip
def test_html(text: str, expected: str) -> None:
    assert escape.html(text) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://app.qualitymax.io/#/projects/137", "https://app.qualitymax.io/#/projects/137"),
        ("http://127.0.0.1:8000/r?a=1&b=2", "http://127.0.0.1:8000/r?a=1&b=2"),
        ("HTTPS://Example.com/X", "HTTPS://Example.com/X"),
        ("  https://example.com/x\n", "https://example.com/x"),
        ("https://example.com/a b", "https://example.com/a%20b"),
        (
            "https://example.com/a(b)|c<d>\"e'`\\",
            "https://example.com/a%28b%29%7Cc%3Cd%3E%22e%27%60%5C",
        ),
        ("https://example.com/ü\u2028x", "https://example.com/%C3%BC%E2%80%A8x"),
        ("https://example.com/already%20encoded", "https://example.com/already%20encoded"),
        ("https://user@[::1]:8443/x", "https://user@[::1]:8443/x"),
        ("javascript:alert(1)", None),
        ("JavaScript:alert(1)", None),
        (" javascript:alert(1)", None),
        ("java\tscript:alert(1)", None),
        ("\x01javascript:alert(1)", None),
        ("javascript://example.com/%0Aalert(1)", None),
        ("data:text/html,<script>alert(1)</script>", None),
        ("file:///etc/passwd", None),
        ("vbscript:msgbox", None),
        ("mailto:a@example.com", None),
        ("ftp://example.com/x", None),
        ("//evil.example/x", None),
        ("/relative/path", None),
        ("relative.html", None),
        ("https://", None),
        ("http:///path", None),
        ("https:evil.example", None),
        ("http://[::1", None),
        ("https://example.com:port/", None),
        ("", None),
        (None, None),
        (42, None),
        (["https://example.com"], None),
    ],
)
def test_link_only_http_and_https(url: object, expected: str | None) -> None:
    assert escape.link(url) == expected


# -- what the renderers make of it --------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_renders_as_exactly_the_text(text: str) -> None:
    """No tag, link, emphasis, heading or list: the same words, mentions joined invisibly."""
    assert rendered_markdown(escape.markdown(text)) == escape.plain(text)


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_stays_in_its_table_cell(text: str) -> None:
    table = f"| a | b |\n| --- | --- |\n| {escape.markdown(text)} | end |\n"
    out = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(table)
    cells = out.split("<tbody>")[1]
    assert cells.count("<td>") == 2 and "<td>end</td>" in cells
    first = cells.split("<td>")[1].removesuffix("</td>\n")
    assert "<" not in first and html.unescape(first) == escape.plain(text)


@pytest.mark.parametrize("text", HOSTILE)
def test_slack_reaches_slack_with_no_control_character_and_reads_the_same(text: str) -> None:
    shown = slack_shows(
        NotifySlack._commonmark_to_slack(  # type: ignore[no-untyped-call]
            escape.slack(text)
        )
    )
    if not any(mark in text for mark in "*_~"):  # Slack styles those; it cannot escape them
        expected = escape.plain(text).replace("\\", "\\" + Z).replace("`", GRAVE)
        assert shown == expected


@pytest.mark.parametrize("text", HOSTILE)
def test_html_unescapes_to_the_text(text: str) -> None:
    escaped = escape.html(text)
    assert not set("<>\"'") & set(escaped)
    assert html.unescape(escaped) == escape.plain(text)


@pytest.mark.parametrize(
    "medium", [escape.plain, escape.markdown, escape.slack, escape.html], ids=lambda f: f.__name__
)
@pytest.mark.parametrize("text", HOSTILE)
def test_no_medium_leaves_a_live_mention_or_tag(medium: Callable[[str], str], text: str) -> None:
    out = medium(text)
    for live in ("<!", "<@", "<#", "<script", "<img", "</details", "@acme", "@octocat", "#12"):
        assert live not in out
    assert "\n" not in out and "\r" not in out and "\u202e" not in out


def test_very_long_hostile_text_is_escaped_whole_and_clipped_before() -> None:
    text = "<!channel> [x](javascript:alert(1)) @acme/everyone | `" * 5000  # 260,000 characters
    for medium in (escape.plain, escape.markdown, escape.slack, escape.html):
        out = medium(text)
        assert "<!" not in out and "@acme" not in out and len(out) > len(text)
        # Clipped first, then escaped: no escape is ever cut in half, and the growth is bounded.
        short = medium(clip(text, 400))
        assert len(short) <= 4 * 400
        assert not short.endswith("\\") and "<!" not in short
    assert rendered_markdown(escape.markdown(clip(text, 400))) == escape.plain(clip(text, 400))
