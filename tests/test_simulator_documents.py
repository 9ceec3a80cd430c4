"""Each simulator answers what its provider's document shows, field for field, and refuses what
the document does not describe. The examples are read from the documents themselves
(../shared/providers/), so a simulator that invents a field, or lacks one, fails here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from receiver.signatures import sign
from receiver.simulator import qualgent as gent_sim
from receiver.simulator import qualigate as gate_sim
from receiver.simulator import qualitymax as qm_sim
from receiver.simulator.common import Served
from tests.test_qualitymax_client import Capture

REPO = Path(__file__).resolve().parent.parent
# Beside the checkout (CI, the main checkout), or beside its worktrees' folder.
DOCS = next(
    (p for p in (REPO.parent / "shared/providers", REPO.parent.parent / "shared/providers")
     if p.exists()),
    REPO.parent / "shared/providers",
)  # fmt: skip
pytestmark = pytest.mark.skipif(
    not DOCS.exists(), reason="../shared/providers is not beside this checkout"
)
QM_KEY = "qm-doc-key"
QM_SECRET = "doc-secret"


def document(name: str) -> str:
    return (DOCS / name).read_text()


def _balanced(text: str, start: int) -> Any:
    """The JSON value that opens at ``start``, read to its matching close."""
    return json.loads(text[start : _end_of(text, start)])


def example(text: str, after: str, nth: int = 0) -> Any:
    """The ``nth`` JSON object after the words ``after`` in a document."""
    position = text.index(after)
    for _ in range(nth):
        position = _end_of(text, text.index("{", position))
    return _balanced(text, text.index("{", position))


def _end_of(text: str, start: int) -> int:
    """Where the value that opens at ``start`` ends, brackets matched outside strings (an
    example passed over is not parsed)."""
    depth, in_string, escaped = 0, False, False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            escaped = char == "\\" and not escaped
            if char == '"' and not escaped:
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return index + 1
    raise AssertionError("unbalanced example")


def at(text: str, words: str) -> Any:
    """The JSON object that opens at ``words`` (which start with its ``{``)."""
    return _balanced(text, text.index(words))


def same_shape(doc: Any, sim: Any, path: str = "$", optional: frozenset[str] = frozenset()) -> None:
    """The same keys at every level; a documented null, or an empty list, takes any value; a
    key in ``optional`` (an object the document shows "if any") may be null."""
    if sim is None and path.rsplit(".", 1)[-1] in optional:
        return
    if isinstance(doc, dict):
        assert isinstance(sim, dict), f"{path}: the document has an object, got {sim!r}"
        assert set(sim) == set(doc), (
            f"{path}: simulator has {sorted(set(sim) - set(doc))} more, "
            f"{sorted(set(doc) - set(sim))} fewer than the document"
        )
        for key, value in doc.items():
            same_shape(value, sim[key], f"{path}.{key}", optional)
    elif isinstance(doc, list):
        assert isinstance(sim, list), f"{path}: the document has a list, got {sim!r}"
        if doc and sim:
            for item in sim:
                same_shape(doc[0], item, f"{path}[]", optional)
    elif doc is not None and sim is not None:
        kinds = (str, bool, int | float)
        want = next(k for k in kinds if isinstance(doc, k))
        assert isinstance(sim, want), f"{path}: {sim!r} is not like the document's {doc!r}"


# -- QualityMax ----------------------------------------------------------------------------------


@pytest.fixture
def qm() -> Iterator[httpx.Client]:
    settings = qm_sim.SimulatorSettings(api_key=QM_KEY, webhook_secret=QM_SECRET, delay=0.05)
    with Served(qm_sim.create_simulator(settings)) as served:
        headers = {"X-QualityMax-API-Key": QM_KEY}
        with httpx.Client(base_url=served.url, headers=headers, timeout=10) as client:
            yield client


def webhook(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    raw = json.dumps(body).encode()
    headers = {"X-Partner-Signature": sign(raw, QM_SECRET), "Content-Type": "application/json"}
    return client.post("/api/webhooks/acme", content=raw, headers=headers)


def test_qualitymax_webhook_answer_and_callback_are_the_documents(qm: httpx.Client) -> None:
    text = document("qualitymax-partner-api.txt")
    capture = Capture()
    request = example(text, "Trigger AI test generation\n\nTriggers")
    request["callback_url"] = capture.url
    request["custom_data"]["simulate"] = "failed"
    answer = webhook(qm, request)
    assert answer.status_code == 200, answer.text
    same_shape(example(text, "Response (immediate)"), answer.json())
    _headers, body = capture.received.get(timeout=15)
    callback = json.loads(body)
    documented = example(text, "Callback (async, POSTed to your callback_url)")
    documented["custom_data"] = callback["custom_data"] = {}  # the caller's own
    documented["results"]["failures"] = []  # shown empty: its entries' shape is not documented
    callback["results"]["failures"] = []
    same_shape(documented, callback)
    assert "job_id" not in callback  # real callbacks carry none

    execution = callback["results"]["tests"][1]["execution_id"]
    logs = qm.get(f"/api/v1/partner/artifacts/{execution}/logs")
    same_shape(example(text, "Returns structured execution logs"), logs.json())
    job_id = answer.json()["job_id"]
    report = qm.get(f"/api/v1/partner/jobs/{job_id}/report")
    same_shape(example(text, "Full structured report for a partner webhook job"), report.json())


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"auth": {"username": "a@example.com", "password": "pw"}}, "type"),
        ({"priority": "high"}, "priority"),
        ({"options": {"browser": "chromium", "retries": 2}}, "retries"),
    ],
)
def test_qualitymax_refuses_a_webhook_the_document_does_not_describe(
    qm: httpx.Client, change: dict[str, Any], words: str
) -> None:
    body = {"url": "https://a.example", "feature_description": "f", "callback_url": "http://x/"}
    answer = webhook(qm, {**body, **change})
    assert answer.status_code == 400
    assert words in answer.json()["detail"]


def test_qualitymax_partner_endpoints_answer_the_documents_examples(qm: httpx.Client) -> None:
    text = document("qualitymax-partner-api.txt")
    imported = qm.post(
        "/api/v1/partner/repositories/import", json=example(text, "Repository Import")
    )
    same_shape(example(text, "Repository Import", 1), imported.json())
    scan = qm.post("/api/v1/partner/sast/scan", json=example(text, "Trigger a SAST scan"))
    same_shape(example(text, "Trigger a SAST scan", 1), scan.json())
    path = scan.json()["status_url"].removeprefix("/api/v1/partner")
    answers = [qm.get(f"/api/v1/partner{path}").json() for _ in range(3)]
    assert [a["status"] for a in answers] == ["pending", "running", "completed"]
    same_shape(example(text, "Get SAST scan results"), answers[-1])
    gap = qm.post("/api/v1/partner/gap-analysis", json=example(text, "Gap Analysis"))
    same_shape(example(text, "Gap Analysis", 1), gap.json())
    gap_id = gap.json()["job_id"]
    polls = [qm.get(f"/api/v1/partner/gap-analysis/{gap_id}").json() for _ in range(3)]
    same_shape(example(text, "Poll gap analysis job status"), polls[-1])
    for path, words in (
        ("/api/v1/partner/api-tests/generate", "API Test Generation"),
        ("/api/v1/partner/test-cases", "Create a test case in a project"),
        ("/api/v1/partner/test-cases/generate", "AI-generate test cases"),
    ):
        answer = qm.post(path, json=example(text, words))
        assert answer.status_code == 200, (path, answer.text)


def test_qualitymax_refuses_what_the_document_does_not_have(qm: httpx.Client) -> None:
    unknown = qm.post("/api/v1/partner/sast/scan", json={"repository_id": 999})
    assert unknown.status_code == 404
    assert "Import it first" in unknown.json()["detail"]
    odd = qm.post("/api/v1/partner/sast/scan", json={"repository_id": 42, "depth": 3})
    assert odd.status_code == 422
    assert qm.get("/api/v1/partner/jobs").status_code in (404, 405)
    keyless = httpx.get(f"{qm.base_url}/api/v1/partner/sast/scan/scan_x")
    assert keyless.status_code == 401


# -- QualGent ------------------------------------------------------------------------------------


@pytest.fixture
def gent() -> Iterator[httpx.Client]:
    with Served(gent_sim.create_app()) as served:
        headers = {"X-Api-Key": gent_sim.API_KEY}
        with httpx.Client(base_url=served.url, headers=headers, timeout=10) as client:
            yield client


def test_qualgent_answers_are_the_documents(gent: httpx.Client) -> None:
    text = document("qualgent-api.txt")
    upload = gent.post(
        "/v1/apps/upload",
        files={"file": ("app.apk", b"apk bytes")},
        data={"app_name": "MyApp", "version": "1.0.0"},
    )
    same_shape(at(text, '{\n"success": true,\n"file"'), upload.json())
    python_example = {
        "jobs": [
            {
                "test_case_id": "tc_pass",
                "platform": "android",
                "app_file_id": gent_sim.APP_ID,
                "device": {
                    "name": "Pixel 7",
                    "platform": "Android",
                    "os_version": "14",
                    "orientation": "portrait",
                },
            }
        ]
    }
    run = gent.post("/v1/test-cases/run", json=python_example)
    assert run.status_code == 200, run.text
    runs = at(text, '{\n"success": true,\n"jobs"')
    same_shape(runs, run.json())
    run_all = gent.post(
        "/v1/test-cases/run-all", json={"app_file_id": gent_sim.APP_ID, "device": gent_sim.DEVICE}
    )
    same_shape(runs, run_all.json())
    listed = gent.get("/v1/jobs/list").json()
    same_shape(at(text, '{\n"test_runs"'), listed)
    run_id = run.json()["jobs"][0]["link"].rsplit("/", 1)[-1]
    status = gent.get(f"/v1/jobs/status/{run_id}").json()
    same_shape(at(text, '{\n"id": "run_abc123",\n"test_case"'), status)
    while status["status"] in ("queued", "running"):
        status = gent.get(f"/v1/jobs/status/{run_id}").json()
    cases = gent.get("/v1/test-cases/list").json()
    assert any(c["latest_completed_run"] for c in cases)
    once = frozenset({"latest_completed_run", "category"})  # "(if any)", "(if assigned)"
    same_shape(at(text, '[\n{\n"id": "tc_1234567890"'), cases, optional=once)


def test_qualgent_refuses_what_the_document_does_not_describe(gent: httpx.Client) -> None:
    for method, path in (("GET", "/v1/categories"), ("GET", "/v1/devices")):
        assert gent.request(method, path).status_code == 404
    assert gent.request("DELETE", "/v1/apps", json={"files": ["x"]}).status_code in (404, 405)
    job = {"test_case_id": "tc_pass", "app_file_id": gent_sim.APP_ID, "device": gent_sim.DEVICE}
    odd = gent.post("/v1/test-cases/run", json={"jobs": [{**job, "retries": 2}]})
    assert odd.status_code == 422
    many = gent.post("/v1/test-cases/run", json={"jobs": [job] * 11})
    assert many.status_code == 400
    assert "At most 10" in many.json()["detail"]
    sideways = {**job, "device": {**gent_sim.DEVICE, "orientation": "upside-down"}}
    assert gent.post("/v1/test-cases/run", json={"jobs": [sideways]}).status_code == 422
    missing = gent.post("/v1/apps/upload", files={"file": ("a.apk", b"x")}, data={"app_name": "A"})
    assert missing.status_code == 422


# -- Qualigate -----------------------------------------------------------------------------------


@pytest.fixture
def gate() -> Iterator[httpx.Client]:
    with Served(gate_sim.create_app()) as served:
        headers = {"Authorization": f"Bearer {gate_sim.API_KEY}"}
        with httpx.Client(base_url=served.url, headers=headers, timeout=10) as client:
            yield client


def test_qualigate_answers_are_the_documents(gate: httpx.Client) -> None:
    text = document("qualigate-api.txt")
    one = gate.post("/api/v1/trigger", json={"test_case_id": gate_sim.FAILING_CASE})
    same_shape(example(text, "Run a Single Test Case", 1), one.json())
    suite = gate.post("/api/v1/trigger", json={"test_suite_id": gate_sim.MIXED_SUITE})
    same_shape(example(text, "Run All Tests in a Suite", 1), suite.json())
    project = gate.post("/api/v1/trigger", json={"project_id": gate_sim.PROJECT})
    same_shape(example(text, "Run All Tests in a Project", 1), project.json())
    run_id = one.json()["test_run_id"]
    for _ in range(2):
        gate.get("/api/v1/trigger", params={"test_run_id": run_id})
    status = gate.get("/api/v1/trigger", params={"test_run_id": run_id}).json()
    same_shape(example(text, "Check Single Test Run"), status)
    suite_id = suite.json()["suite_run_id"]
    suite_status = gate.get("/api/v1/trigger", params={"suite_run_id": suite_id}).json()
    same_shape(example(text, "Check Suite Run"), suite_status)
    ids = ",".join(project.json()["test_run_ids"])
    results = gate.get("/api/v1/results", params={"test_run_ids": ids}).json()
    same_shape(example(text, "Get Multiple Test Results"), results)
    suite_results = gate.get("/api/v1/results", params={"suite_run_id": suite_id}).json()
    same_shape(example(text, "Get Suite Results"), suite_results)
    config = gate.get("/api/v1/ci-config", params={"project_id": gate_sim.PROJECT}).json()
    same_shape(example(text, "/api/v1/ci-config?project_id="), config)


def test_qualigate_refuses_a_field_the_document_does_not_describe(gate: httpx.Client) -> None:
    odd = gate.post("/api/v1/trigger", json={"test_case_id": gate_sim.PASSING_CASE, "retries": 1})
    assert odd.status_code == 400
    assert odd.json()["error"] == "Bad Request"
