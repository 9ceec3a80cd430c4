"""``GET /api/flaky``: the quarantine list, for a CI job that skips or retries flaky tests."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from receiver import views
from receiver.store import Store

Repository = Annotated[
    str | None,
    QueryParameter(
        description="Only the tests of this repository (owner/name), or project", max_length=400
    ),
]


class FlakyController(Controller):
    path = "/api/flaky"
    tags = ["triage"]  # noqa: RUF012  (Litestar declares it as an instance attribute)

    @get(
        "/",
        sync_to_thread=True,
        summary="Flaky tests: passed and failed on one commit, or flip too often",
    )
    def list_flaky(
        self, store: NamedDependency[Store], repository: Repository = None
    ) -> views.FlakyList:
        return store.read(lambda tx: views.flaky_list(tx, repository))
