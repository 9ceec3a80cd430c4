"""A GitHub stand-in: the REST calls receiver's GitHub targets make, kept in memory.

Issue comments (list with pagination, create, edit) and commit statuses, behind a bearer token,
optionally under GitHub Enterprise's ``/api/v3`` prefix. The demo serves it with ``StandIn`` and
shows what "GitHub" received; the tests do the same and inspect ``comments`` and ``statuses``.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec

from receiver.simulator.standin import Received, Reply, json_reply

COMMENTS: Final = re.compile(r"/repos/([^/]+/[^/]+)/issues/(\d+)/comments")
COMMENT: Final = re.compile(r"/repos/([^/]+/[^/]+)/issues/comments/(\d+)")
STATUSES: Final = re.compile(r"/repos/([^/]+/[^/]+)/statuses/([0-9a-f]+)")
NOT_FOUND: Final = {"message": "Not Found"}


class Comment(msgspec.Struct, kw_only=True):
    id: int
    body: str
    issue: int


class GithubApi:
    """``answer(request)`` as GitHub would; ``url_of(base)`` is what GITHUB_API_URL gets."""

    PER_PAGE_MAX = 100

    def __init__(self, token: str, prefix: str = "") -> None:
        self.token = token
        self.prefix = prefix  # GitHub Enterprise serves the API under /api/v3
        self.comments: dict[str, list[Comment]] = {}  # by repository
        self.statuses: dict[str, list[dict[str, Any]]] = {}  # by sha, in arrival order
        self.next_id = 1000
        self.base_url = ""  # set by whoever serves it: the Link header's next page needs it

    def answer(self, request: Received) -> Reply:
        path, _, query = request.path.partition("?")
        if not path.startswith(self.prefix):
            return json_reply(404, NOT_FOUND)
        path = path[len(self.prefix) :]
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return json_reply(401, {"message": "Bad credentials"})
        if m := COMMENTS.fullmatch(path):
            repo, issue = m.group(1), int(m.group(2))
            if request.method == "GET":
                return self._list(repo, issue, query)
            comment = self.add_comment(repo, issue, request.json()["body"])
            return json_reply(201, {"id": comment.id, "body": comment.body})
        if (m := COMMENT.fullmatch(path)) and request.method == "PATCH":
            for comment in self.comments.get(m.group(1), []):
                if comment.id == int(m.group(2)):
                    comment.body = request.json()["body"]
                    return json_reply(200, {"id": comment.id, "body": comment.body})
        if m := STATUSES.fullmatch(path):
            self.statuses.setdefault(m.group(2), []).append(request.json())
            return json_reply(201, request.json())
        return json_reply(404, NOT_FOUND)

    def add_comment(self, repo: str, issue: int, body: str) -> Comment:
        self.next_id += 1
        comment = Comment(id=self.next_id, body=body, issue=issue)
        self.comments.setdefault(repo, []).append(comment)
        return comment

    def _list(self, repo: str, issue: int, query: str) -> Reply:
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        per_page = min(int(params.get("per_page", 30)), self.PER_PAGE_MAX)
        page = int(params.get("page", 1))
        found = [c for c in self.comments.get(repo, []) if c.issue == issue]
        chunk = found[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(found):
            next_url = f"{self.base_url}{self.prefix}/repos/{repo}/issues/{issue}/comments"
            headers["Link"] = f'<{next_url}?per_page={per_page}&page={page + 1}>; rel="next"'
        return json_reply(200, [{"id": c.id, "body": c.body} for c in chunk], headers)
