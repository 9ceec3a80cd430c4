"""The read API under ``/api``: results and jobs, newest first, bearer-protected."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import PathParameter, QueryParameter

from receiver import views
from receiver.services import services_of
from receiver.web.params import Cursor, Limit

Filter = Annotated[str | None, QueryParameter(description="Only results with this value")]
ResultId = Annotated[int, PathParameter()]
JobId = Annotated[int, PathParameter()]


class ResultsController(Controller):
    path = "/api/results"
    tags = ["results"]  # noqa: RUF012  (Litestar declares it as an instance attribute)

    @get("/", sync_to_thread=True, summary="Results, newest first")
    def list_results(
        self,
        request: Request[Any, Any, Any],
        status: Filter = None,
        branch: Filter = None,
        provider: Filter = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> views.ResultPage:
        where = views.ResultFilter(
            status=status, branch=branch, provider=provider, limit=limit, before=cursor
        )
        return services_of(request).store.read(lambda tx: views.result_page(tx, where))

    @get("/{result_id:int}", sync_to_thread=True, summary="One result with tests and failures")
    def get_result(
        self, request: Request[Any, Any, Any], result_id: ResultId
    ) -> views.ResultDetail:
        services = services_of(request)
        public_url = services.config.server.public_url
        return services.store.read(
            lambda tx: views.result_detail(tx, result_id, public_url=public_url)
        )


class JobsController(Controller):
    path = "/api/jobs"
    tags = ["jobs"]  # noqa: RUF012

    @get("/", sync_to_thread=True, summary="Jobs, newest first")
    def list_jobs(
        self, request: Request[Any, Any, Any], limit: Limit = 50, cursor: Cursor = None
    ) -> views.JobPage:
        return services_of(request).store.read(
            lambda tx: views.job_page(tx, limit=limit, before=cursor)
        )

    @get("/{job_id:int}", sync_to_thread=True, summary="One job with its result")
    def get_job(self, request: Request[Any, Any, Any], job_id: JobId) -> views.JobView:
        return services_of(request).store.read(lambda tx: views.job_view(tx, job_id))
