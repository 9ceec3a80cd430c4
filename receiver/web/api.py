"""The read API under ``/api``: results and jobs, newest first, bearer-protected."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from receiver import explain, views
from receiver.config import Config
from receiver.store import Store
from receiver.web.errors import error_answers
from receiver.web.params import Cursor, Limit, RowId

Filter = Annotated[str | None, QueryParameter(description="Only results with this value")]


class ResultsController(Controller):
    path = "/api/results"
    tags = ["results"]  # noqa: RUF012  (Litestar declares it as an instance attribute)

    @get("/", sync_to_thread=True, summary="Results, newest first")
    def list_results(
        self,
        store: NamedDependency[Store],
        status: Filter = None,
        branch: Filter = None,
        provider: Filter = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> views.ResultPage:
        where = views.ResultFilter(
            status=status, branch=branch, provider=provider, limit=limit, before=cursor
        )
        return store.read(lambda tx: views.result_page(tx, where))

    @get(
        "/{result_id:int}",
        sync_to_thread=True,
        summary="One result with tests and failures",
        responses=error_answers({404: "No result with this id"}),
    )
    def get_result(
        self, store: NamedDependency[Store], config: NamedDependency[Config], result_id: RowId
    ) -> views.ResultDetail:
        public_url = config.server.public_url
        return store.read(lambda tx: views.result_detail(tx, result_id, public_url=public_url))

    @get(
        "/{result_id:int}/explain",
        sync_to_thread=True,
        summary="Why a result did or did not notify",
        description="Each route's decision as recorded when the result was routed (matched, or "
        "the first `when` key that did not hold with the value seen; on_change and "
        "repeat_after with the previous result compared against), then the deliveries made "
        "with every attempt's time, answer and error.",
        responses=error_answers({404: "No result with this id"}),
    )
    def explain_result(
        self, store: NamedDependency[Store], result_id: RowId
    ) -> explain.Explanation:
        return store.read(lambda tx: explain.explain(tx, result_id))


class JobsController(Controller):
    path = "/api/jobs"
    tags = ["jobs"]  # noqa: RUF012

    @get("/", sync_to_thread=True, summary="Jobs, newest first")
    def list_jobs(
        self, store: NamedDependency[Store], limit: Limit = 50, cursor: Cursor = None
    ) -> views.JobPage:
        return store.read(lambda tx: views.job_page(tx, limit=limit, before=cursor))

    @get(
        "/{job_id:int}",
        sync_to_thread=True,
        summary="One job with its result",
        responses=error_answers({404: "No job with this id"}),
    )
    def get_job(self, store: NamedDependency[Store], job_id: RowId) -> views.JobView:
        return store.read(lambda tx: views.job_view(tx, job_id))
