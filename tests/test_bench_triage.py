"""bench/triage.py at a small scale (its 10,000,000 rows stay out of the suite): it builds a
store the service can read, and times records whose triage really ran."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.triage import main
from receiver import views
from receiver.store import open_store


def test_the_triage_bench_builds_a_store_and_prints_the_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "triage.db"
    args = ["--test-rows", "2000", "--tests", "10", "--repositories", "4", "--branches", "3"]
    main([*args, "--timed", "6", "--db", str(path)])
    out = capsys.readouterr().out
    assert "built: 200 results, 2,000 test rows" in out
    assert "history of 80 tests" in out
    added = re.search(r"triage adds (\d+\.\d+) ms per result \(CPU (\d+\.\d+) ms", out)
    assert added is not None, out
    assert re.search(r"triage itself +median (\d+\.\d+) ms", out)
    given = re.search(r"labels given: (.+)", out)
    assert given is not None and "new" in given.group(1)  # it judged tests, not nothing
    # The built store is one the service reads: its results, and the timed ones rolled back.
    database = open_store(str(path))
    try:
        page = database.read(lambda tx: views.result_page(tx, views.ResultFilter(limit=500)))
        assert len(page.items) == 200 and page.items[0].repository == "acme/repo-0"
        detail = database.read(lambda tx: views.result_detail(tx, 7))
        assert [t.status for t in detail.tests].count("failed") == 1
    finally:
        database.close()
