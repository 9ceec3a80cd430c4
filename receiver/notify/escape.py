"""Partner text made safe for the medium it lands in: one function per medium, one for links.

Everything a provider sends (test names, errors, summaries, custom_data values such as branch or
deploy_id, links) may be hostile: a test named ``<!channel>`` would ping a whole Slack workspace,
``@org/team`` a GitHub team, ``</details><script>`` would close our PR comment's ``<details>``,
and a ``javascript:`` report link would become a commit status link. So the words of a
notification (receiver.notify.message, receiver.notify.github) pass every piece of partner text
through the function of the medium the target renders, and every link through ``link``.

All four first put the text on one line (a newline in a test name must not start a heading, a
list or a quote of its own, nor forge a line of ours) and neutralise mentions and tags the same
way: a zero-width joiner (U+200D) goes after an ``@`` followed by a word character (GitHub's
``@user`` and ``@org/team``, ``@here`` and ``@everyone`` in chat), after a ``<`` followed by a
letter or one of ``! / ? @ #`` (Slack's ``<!channel>``, ``<!here>``, ``<@U…>``, ``<#C…>``,
``<!subteam^…>``; any HTML tag or comment) and after a ``#`` followed by a digit (GitHub's issue
references). It is invisible, so people read the text as it was sent, and no renderer reads the
pair as its syntax any more. Even plain text gets it: a JSON hook is often relayed into Slack.

Then each medium escapes its own syntax, and only that: a target that escapes again on its own
(Apprise's Slack plugin) must not receive entities, or people would read ``&amp;lt;``.

- ``markdown``: GitHub comments and Apprise services that render Markdown. Backslash escapes
  (CommonMark and GitHub read one before any ASCII punctuation), never entities; ``&`` too, or
  ``&#64;team`` would turn back into a mention. Raw HTML cannot start: ``<`` is escaped.
- ``slack``: the Markdown handed to Apprise's Slack plugin, which converts it to mrkdwn itself: it
  writes ``&`` as ``&amp;``, ``\\<`` and ``\\>`` as ``&lt;`` and ``&gt;`` (what Slack documents),
  ``\\[`` ``\\]`` ``\\#`` as the bare character, and keeps every other backslash pair, which
  Slack then shows, having no escapes of its own. So this escapes exactly those characters, lets
  ``&`` through raw, and leaves ``*``, ``_`` and ``~`` alone (at worst they restyle a word; they
  can neither link nor mention). A backtick becomes ˋ (U+02CB): two of them would open a code
  span that swallows our own links.
- ``mrkdwn``: Slack's own markup, written by us for the Web API (``slackbot://``): exactly what
  Slack documents, ``&`` ``<`` ``>`` as ``&amp;`` ``&lt;`` ``&gt;`` (so ``<!channel>`` and
  ``<url|label>`` cannot start), and a backtick as ˋ (a code span would swallow our links).
- ``html``: email. Apprise sends our HTML as is and derives the text/plain part from it.
- ``plain``: JSON and every service rendering text: nothing is markup, so nothing but the above.

``link`` keeps only absolute http(s) URLs with a host (a ``javascript:``, ``data:``, ``file:``,
protocol-relative or relative link is dropped: None), percent-encoding what could end the link
in any of the media (spaces, quotes, brackets, ``|``, ``<``, ``>``, backslashes, non-ASCII).
"""

from __future__ import annotations

import html as html_lib
import re
from typing import Final
from urllib.parse import quote, urlsplit

ZWJ: Final = "\u200d"
# Where a zero-width joiner goes: after "@" before a word character, after "<" before what starts
# a tag or a Slack mention, after "#" before a digit.
MENTION: Final = re.compile(r"(?<=@)(?=\w)|(?<=<)(?=[A-Za-z!/?@#])|(?<=#)(?=\d)")
# Line breaks and other control characters become spaces; bidirectional overrides, which can make
# a name read backwards, go.
CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
BIDI: Final = re.compile(r"[\u202a-\u202e\u2066-\u2069]")

# CommonMark punctuation with a meaning anywhere in a line (GitHub's too: ~ strikes, $ is math).
MARKDOWN_INLINE: Final = re.compile(r"[\\`*_\[\]<>|~&$]")
# At the start of a line only: headings, quotes, list items, setext underlines, ordered items.
MARKDOWN_START: Final = re.compile(r"^(?:[#+=-]|\d+(?=[.)]))")
SLACK_INLINE: Final = re.compile(r"[\[\]<>]")
SLACK_START: Final = re.compile(r"^#")

HTTP_SCHEMES: Final = ("http", "https")
# Left as they are in a link; everything else is percent-encoded. Not here: ( ) ' " < > | \ `
# { } ^, spaces and non-ASCII, each of which ends or breaks a link in one of the media.
URL_SAFE: Final = "-._~:/?#[]@!$&*+,;=%"


def one_line(text: str) -> str:
    """The text on one line: control characters become spaces, runs of spaces one, bidi
    overrides go."""
    return " ".join(CONTROL.sub(" ", BIDI.sub("", text)).split())


def defang(text: str) -> str:
    """Mentions, tags and issue references no renderer will act on (a zero-width joiner)."""
    return MENTION.sub(ZWJ, text)


def plain(text: str) -> str:
    """Partner text for plain text: JSON and text services, titles and email subjects."""
    return defang(one_line(text))


def markdown(text: str) -> str:
    """Partner text for CommonMark and GitHub Markdown, table cells included."""
    escaped = MARKDOWN_INLINE.sub(r"\\\g<0>", plain(text))
    if match := MARKDOWN_START.match(escaped):
        end = match.end()
        # A leading "-" gets its backslash before it; "1." after the digits, on the ".".
        return escaped[:end] + "\\" + escaped[end:] if escaped[0].isdigit() else "\\" + escaped
    return escaped


def slack(text: str) -> str:
    """Partner text for the Markdown Apprise turns into Slack mrkdwn (see the module's notes)."""
    text = plain(text).replace("\\", "\\" + ZWJ).replace("`", "\u02cb")
    return SLACK_START.sub(r"\\#", SLACK_INLINE.sub(r"\\\g<0>", text))


def mrkdwn(text: str) -> str:
    """Partner text for Slack mrkdwn sent through the Web API (Block Kit sections)."""
    escaped = plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("`", "\u02cb")


def html(text: str) -> str:
    """Partner text for HTML: email bodies."""
    return html_lib.escape(plain(text), quote=True)


def link(url: object) -> str | None:
    """``url`` when it is an absolute http(s) URL with a host, encoded to stay one link; else
    None."""
    if not isinstance(url, str):
        return None
    candidate = url.strip()
    try:
        parts = urlsplit(candidate)
        host, _ = parts.hostname, parts.port
    except ValueError:  # an unbalanced "[" in the host, a port that is not a number
        return None
    if parts.scheme.lower() not in HTTP_SCHEMES or not host:
        return None
    return quote(candidate, safe=URL_SAFE)
