"""``receiver serve`` as a real process: durable before acknowledged, across SIGKILL and SIGTERM."""

import hashlib
import http.client
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from receiver.process import ServiceProcess
from tests.conftest import SECRET, TOKEN, callback_body, signed


def unique_body(n: int) -> bytes:
    return callback_body(custom_data={"branch": "load", "n": n})


def stored_digests(db_path: str) -> list[bytes]:
    with sqlite3.connect(db_path) as conn:
        return [bytes(row[0]) for row in conn.execute("SELECT digest FROM callback_digests")]


def test_every_acknowledged_callback_survives_sigkill(
    service: ServiceProcess, env: dict[str, str]
) -> None:
    acknowledged: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def send(worker: int) -> None:
        with httpx.Client(base_url=service.url, timeout=5) as client:
            for i in range(10_000):
                if stop.is_set():
                    return
                n = worker * 100_000 + i
                body = unique_body(n)
                try:
                    response = client.post(
                        "/callbacks/qualitymax", content=body, headers=signed(body)
                    )
                except httpx.TransportError:
                    return  # the service died under us: this one was never acknowledged
                if response.status_code == 200:
                    with lock:
                        acknowledged.append(n)

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(send, w) for w in range(8)]
        while len(acknowledged) < 300:
            time.sleep(0.01)
        service.kill()  # SIGKILL mid-load
        stop.set()
        for future in futures:
            future.result()

    digests = stored_digests(env["RECEIVER_DB"])
    assert len(digests) == len(set(digests)), "a callback was stored twice"
    assert len(digests) >= len(acknowledged)

    service.start()
    with httpx.Client(base_url=service.url, timeout=10) as client:
        for n in acknowledged:
            body = unique_body(n)
            response = client.post("/callbacks/qualitymax", content=body, headers=signed(body))
            assert response.status_code == 200
            assert response.json()["duplicate"] is True, f"acknowledged callback {n} was lost"


def test_sigterm_finishes_in_flight_requests_and_exits_zero(service: ServiceProcess) -> None:
    results: list[int] = []

    def send(n: int) -> None:
        body = unique_body(n)
        try:
            response = httpx.post(
                f"{service.url}/callbacks/qualitymax",
                content=body,
                headers=signed(body),
                timeout=10,
            )
            results.append(response.status_code)
        except httpx.TransportError:
            results.append(0)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    assert service.stop() == 0
    for thread in threads:
        thread.join()
    # Each request either completed with 200 or was never accepted; none got a 5xx.
    assert all(code in (200, 0) for code in results)


def test_logs_carry_no_secret_signature_or_token(service: ServiceProcess, tmp_path: Path) -> None:
    body = unique_body(1)
    signature = signed(body)["X-QualityMax-Signature"]
    with httpx.Client(base_url=service.url, timeout=5) as client:
        assert (
            client.post("/callbacks/qualitymax", content=body, headers=signed(body)).status_code
            == 200
        )
        client.post("/callbacks/qualitymax", content=b"[]", headers=signed(b"[]"))
        client.post(
            "/callbacks/qualitymax", content=body, headers={"X-QualityMax-Signature": "sha256=00"}
        )
        client.get("/api/results", headers={"Authorization": f"Bearer {TOKEN}"})
        client.get("/api/results", headers={"Authorization": "Bearer wrong-token-value"})
        metrics = client.get("/metrics").text
    service.stop()
    log = (tmp_path / "serve.log").read_text()
    assert '"event": "callback"' in log or '"event":"callback"' in log
    for secret in (
        SECRET,
        TOKEN,
        signature,
        signature.removeprefix("sha256="),
        "wrong-token-value",
    ):
        assert secret not in log
        assert secret not in metrics


def test_one_json_log_line_per_callback(service: ServiceProcess, tmp_path: Path) -> None:
    with httpx.Client(base_url=service.url, timeout=5) as client:
        for n in range(3):
            body = unique_body(n)
            client.post("/callbacks/qualitymax", content=body, headers=signed(body))
    service.stop()
    lines = [
        json.loads(line)
        for line in (tmp_path / "serve.log").read_text().splitlines()
        if line.startswith("{")
    ]
    callbacks = [line for line in lines if line["event"] == "callback"]
    assert len(callbacks) == 3
    assert {line["outcome"] for line in callbacks} == {"accepted"}
    assert all("duration_ms" in line and "id" in line for line in callbacks)


def test_a_chunked_body_over_the_limit_is_refused_while_read(
    service: ServiceProcess, env: dict[str, str]
) -> None:
    """No Content-Length to trust: the limit is counted on the bytes as they arrive."""
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"pad": "'
        for _ in range(64):
            sent += 65536
            yield b"x" * 65536
        yield b'"}'

    response = httpx.post(
        f"{service.url}/callbacks/qualitymax",
        content=chunks(),
        headers={"X-QualityMax-Signature": "sha256=" + "0" * 64},
        timeout=10,
    )
    assert response.status_code == 413
    assert response.json()["detail"].startswith("The body is over 1048576 bytes")
    assert stored_digests(env["RECEIVER_DB"]) == []


def _post_in_parts(conn: http.client.HTTPConnection, body: bytes, *, chunked: bool) -> int:
    """One callback on ``conn``, its body sent in two parts a moment apart; the status."""
    conn.putrequest("POST", "/callbacks/qualitymax")
    conn.putheader("X-QualityMax-Signature", signed(body)["X-QualityMax-Signature"])
    first, rest = body[:100], body[100:]
    if chunked:
        conn.putheader("Transfer-Encoding", "chunked")
        first = b"%x\r\n%s\r\n" % (len(first), first)
        rest = b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest)
    else:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(first)
    time.sleep(0.2)
    conn.send(rest)
    response = conn.getresponse()
    response.read()
    return response.status


def test_a_body_in_parts_is_read_whole_and_the_connection_serves_the_next(
    service: ServiceProcess, env: dict[str, str]
) -> None:
    """The body is complete at its Content-Length (or a chunked body's last chunk), not at
    its first part, and the kept-alive connection then takes the next callback."""
    bodies = [unique_body(n) for n in range(3)]
    conn = http.client.HTTPConnection(service.url.removeprefix("http://"), timeout=10)
    statuses, sockets = [], []
    for body, chunked in zip(bodies, [False, False, True], strict=True):
        statuses.append(_post_in_parts(conn, body, chunked=chunked))
        sockets.append(conn.sock)  # None once the server asked to close
    conn.close()
    assert statuses == [200, 200, 200]
    assert sockets[0] is not None and sockets == [sockets[0]] * 3
    assert sorted(stored_digests(env["RECEIVER_DB"])) == sorted(
        hashlib.sha256(body).digest() for body in bodies
    )


def test_the_service_dedupes_concurrent_repeats(
    service: ServiceProcess, env: dict[str, str]
) -> None:
    a, b = unique_body(1), unique_body(2)
    bodies = [a] * 8 + [b] * 8
    with httpx.Client(base_url=service.url, timeout=10) as client, ThreadPoolExecutor(16) as pool:
        responses = list(
            pool.map(
                lambda body: client.post(
                    "/callbacks/qualitymax", content=body, headers=signed(body)
                ),
                bodies,
            )
        )
    assert [r.status_code for r in responses] == [200] * 16
    for body in (a, b):
        answers = [r.json() for r, x in zip(responses, bodies, strict=True) if x == body]
        assert sorted(x["duplicate"] for x in answers) == [False] + [True] * 7
        assert len({x["callback_id"] for x in answers}) == 1
    assert sorted(stored_digests(env["RECEIVER_DB"])) == sorted(
        hashlib.sha256(x).digest() for x in (a, b)
    )
