"""``GET /api/artifacts/{execution}/{kind}``: a test's screenshot or video, by a redirect.

QualityMax answers its artifact endpoints only with the API key; this route asks with the key
(kept on the server) and redirects the signed-in caller to where the partner's 302 points. It
serves only executions of stored results (receiver is no open door to the partner's API), and
only http(s) locations.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import get
from litestar.datastructures import State
from litestar.params import PathParameter
from litestar.response import Redirect

from receiver.notify import escape
from receiver.providers.errors import NotConfigured, ProviderError
from receiver.providers.qualitymax import QualityMax
from receiver.store import NotFound
from receiver.store import results as stored
from receiver.web.errors import error_answers

ExecutionId = Annotated[
    str, PathParameter(max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$", description="A test's id")
]
Kind = Annotated[Literal["screenshot", "video"], PathParameter(description="What to show")]


@get(
    "/api/artifacts/{execution:str}/{kind:str}",
    tags=["results"],
    summary="A test's screenshot or video (a redirect)",
    description="Redirects (302) to the screenshot or video of a stored test's execution, "
    "asking QualityMax with the service's API key, which never leaves the service.",
    status_code=302,
    responses=error_answers(
        {
            404: "No stored test ran as this execution",
            409: "QualityMax's API key is not set on the service",
            502: "QualityMax refused or failed the request",
        }
    ),
)
async def artifact(execution: ExecutionId, kind: Kind, state: State) -> Redirect:
    execution_id = execution
    services: Any = state.services
    found = services.store.read(lambda tx: stored.result_of_execution(tx, execution_id))
    if found is None:
        raise NotFound(f"No stored test ran as execution {execution_id}")
    provider = services.providers.get("qualitymax")
    if not isinstance(provider, QualityMax) or not provider.settings.api_key:
        raise NotConfigured(
            "QualityMax", "QUALITYMAX_API_KEY ([qualitymax] api_key) is not set on the service"
        )
    location = escape.link(await provider.artifact_location(execution_id, kind))
    if location is None:
        raise ProviderError("QualityMax", f"QualityMax's {kind} location is not an http(s) URL")
    return Redirect(location, status_code=302)
