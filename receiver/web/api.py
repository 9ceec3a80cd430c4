"""The read API under ``/api``: results and jobs, newest first, bearer-protected."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import QueryParameter

from receiver import store
from receiver.services import services_of
from receiver.web.errors import error_answers
from receiver.web.params import Cursor, Limit, RowId

Filter = Annotated[str | None, QueryParameter(description="Only results with this value")]


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
    ) -> store.ResultPage:
        where = store.ResultFilter(
            status=status, branch=branch, provider=provider, limit=limit, before=cursor
        )
        return services_of(request).store.read(lambda db: store.list_results(db, where))

    @get(
        "/{result_id:int}",
        sync_to_thread=True,
        summary="One result with tests and failures",
        responses=error_answers({404: "No result with this id"}),
    )
    def get_result(self, request: Request[Any, Any, Any], result_id: RowId) -> store.ResultDetail:
        return services_of(request).store.read(lambda db: store.get_result(db, result_id))


class JobsController(Controller):
    path = "/api/jobs"
    tags = ["jobs"]  # noqa: RUF012

    @get("/", sync_to_thread=True, summary="Jobs, newest first")
    def list_jobs(
        self, request: Request[Any, Any, Any], limit: Limit = 50, cursor: Cursor = None
    ) -> store.JobPage:
        return services_of(request).store.read(
            lambda db: store.list_jobs(db, limit=limit, before=cursor)
        )

    @get(
        "/{job_id:int}",
        sync_to_thread=True,
        summary="One job with its result",
        responses=error_answers({404: "No job with this id"}),
    )
    def get_job(self, request: Request[Any, Any, Any], job_id: RowId) -> store.JobView:
        return services_of(request).store.read(lambda db: store.get_job(db, job_id))
