"""Links receiver itself emits: never one that needs a key.

A result's "Full report" is the provider's report page when it gave one (QualityMax's
``report_app_url``, Qualigate's and QualGent's run pages); without one, the result's own page
in receiver (``/results/{id}``, when ``public_url`` is set), else no link at all. The partner
API's ``/jobs/{id}/report`` is never linked: it answers 401 without the API key.
"""

from __future__ import annotations

from receiver.config import Config
from receiver.notify import escape
from receiver.views import ResultDetail


def result_page(config: Config, result_id: int) -> str | None:
    """``{public_url}/results/{id}``, or None when the service has no http(s) public URL."""
    public_url = (config.server.public_url or "").rstrip("/")
    return escape.link(f"{public_url}/results/{result_id}") if public_url else None


def with_page(result: ResultDetail, config: Config) -> ResultDetail:
    """The result with its page in receiver among its links."""
    result.links.page = result_page(config, result.id)
    return result


def report(result: ResultDetail) -> str | None:
    """Where "Full report" points: the provider's report, else the result's page, else None."""
    return result.links.report or result.links.page
