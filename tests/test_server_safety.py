"""Bad requests get the right status in OpenAI's error shape and the server keeps serving; disconnects stop work.

One chat server per module (SmolLM2-135M, real engine); the security
middleware is also checked on WebSocket scopes with a small app of its own,
since the realtime route is mounted separately.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from runanywhere import EventBus, GenerationCompleted, GenerationStarted
from runanywhere.models.manager import ModelLibrary
from runanywhere.runtime.llama import default_max_sequences
from runanywhere.server import ServerConfig, create_app
from runanywhere.server.security import SecurityMiddleware

from .serving import serving

CHAT = "smollm2-135m-instruct-q4_1"
KEY = "sk-local-test"


@pytest.fixture(scope="module")
def bus() -> EventBus:
    return EventBus()


@pytest.fixture(scope="module")
def url(packaged_models: ModelLibrary, smollm2: Path, bus: EventBus) -> Iterator[str]:
    config = ServerConfig(models=(CHAT,), api_key=KEY, max_upload_bytes=64 * 1024, cors_origins=("http://app.test",))
    with serving(create_app(config, library=packaged_models, events=bus)) as base:
        yield base


@pytest.fixture
def http(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as client:
        yield client


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": CHAT, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, **extra}


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def still_serving(http: httpx.Client) -> None:
    assert http.get("/health").json()["status"] == "ok"
    assert http.post("/v1/chat/completions", json=chat()).status_code == 200


def test_malformed_json_and_a_non_object_body_are_400(http: httpx.Client):
    content = {"headers": {"Content-Type": "application/json"}}
    assert error_of(http.post("/v1/chat/completions", content=b'{"model": ', **content), 400)["code"] == "invalid_json"
    assert error_of(http.post("/v1/chat/completions", content=b"[1, 2]", **content), 400)["code"] == "invalid_json"
    still_serving(http)


def test_an_unknown_model_is_404_through_the_openai_client(url: str):
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "Hi"}])
    with pytest.raises(openai.BadRequestError, match="embedding"):
        client.embeddings.create(model=CHAT, input="cat")


@pytest.mark.parametrize(("extra", "param"), [
    ({"frobnicate": True}, "frobnicate"), ({"n": 2}, "n"), ({"logprobs": True}, "logprobs"),
    ({"temperature": 3}, "temperature"), ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"tool_choice": "required"}, "tool_choice"), ({"max_tokens": "many"}, "max_tokens"),
])
def test_unknown_unsupported_or_bad_parameters_are_400_naming_them(http: httpx.Client, extra: dict[str, Any],
                                                                    param: str):
    assert error_of(http.post("/v1/chat/completions", json=chat(**extra)), 400)["param"] == param
    assert http.post("/v1/chat/completions", json=chat(n=1, logprobs=False)).status_code == 200


def test_an_image_part_is_refused_naming_it(http: httpx.Client):
    parts = [{"type": "text", "text": "What is this?"},
             {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    error = error_of(http.post("/v1/chat/completions", json=chat(messages=[{"role": "user", "content": parts}])), 400)
    assert error["param"] == "messages[0].content[1]" and "vision" in error["message"]


def test_a_wrong_or_missing_key_is_401_and_health_stays_open(url: str):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        assert error_of(httpx.get(f"{url}/v1/models", headers=headers), 401)["code"] == "invalid_api_key"
    assert httpx.get(f"{url}/health").status_code == 200


def test_oversize_uploads_are_413_with_or_without_a_length(http: httpx.Client):
    big = b"\0" * (128 * 1024)
    files = {"file": ("big.wav", big, "audio/wav")}
    assert error_of(http.post("/v1/audio/transcriptions", files=files, data={"model": "whisper-1"}), 413)
    multipart = (b'--x\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n'
                 b"Content-Type: audio/wav\r\n\r\n" + big + b"\r\n--x--\r\n")
    chunks = iter([multipart[:40_000], multipart[40_000:]])  # chunked: no Content-Length to check up front
    response = http.post("/v1/audio/transcriptions", content=chunks,
                         headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert error_of(response, 413)["code"] == "body_too_large"
    assert error_of(http.post("/v1/chat/completions", content=b"x" * (5 * 1024 * 1024)), 413)
    still_serving(http)


def test_a_host_header_from_elsewhere_is_refused(http: httpx.Client):
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example"):
        assert error_of(http.get("/v1/models", headers={"Host": host}), 400)["code"] == "host_not_allowed"
    assert http.get("/v1/models", headers={"Host": "localhost:1234"}).status_code == 200


def test_cross_origin_requests_only_from_configured_origins(http: httpx.Client):
    assert error_of(http.get("/v1/models", headers={"Origin": "http://evil.example"}), 403)
    allowed = http.get("/v1/models", headers={"Origin": "http://app.test"})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "http://app.test"
    preflight = http.options("/v1/chat/completions", headers={"Origin": "http://app.test",
                                                              "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204 and "POST" in preflight.headers["access-control-allow-methods"]
    assert http.get("/v1/models", headers={"Origin": http.base_url.__str__().rstrip("/")}).status_code == 200


def test_unknown_paths_and_methods_are_openai_errors(http: httpx.Client):
    assert error_of(http.get("/v1/nothing"), 404)["code"] == "not_found"
    assert error_of(http.get("/v1/chat/completions"), 405)


def _watch(bus: EventBus) -> tuple[list[GenerationCompleted], threading.Event]:
    done: list[GenerationCompleted] = []
    started = threading.Event()
    bus.on(GenerationStarted, lambda _e: started.set())
    bus.on(GenerationCompleted, done.append)
    return done, started


def _raw_post(url: str, path: str, body: dict[str, Any]) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    data = json.dumps(body).encode()
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
    return sock


def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_client_leaving_mid_stream_stops_its_generation(url: str, bus: EventBus, http: httpx.Client):
    done, _ = _watch(bus)
    body = {"model": CHAT, "prompt": "1, 2, 3, 4, 5,", "max_tokens": 1500, "temperature": 0, "stream": True}
    sock = _raw_post(url, "/v1/completions", body)
    received = b""
    while received.count(b"data: ") < 4:
        received += sock.recv(4096)
    sock.close()
    _wait_for(lambda: done, "the generation to end")
    assert done[0].finish_reason == "cancelled" and done[0].tokens_used < 1500
    still_serving(http)


def test_a_client_leaving_mid_prefill_stops_it_before_any_token(url: str, bus: EventBus, http: httpx.Client):
    done, started = _watch(bus)
    prompt = " ".join(f"item {i} is a box of red apples." for i in range(220))  # ~2000 tokens to evaluate
    sock = _raw_post(url, "/v1/chat/completions", chat(messages=[{"role": "user", "content": prompt}]))
    _wait_for(started.is_set, "the generation to start")
    sock.close()
    _wait_for(lambda: done, "the generation to end")
    assert done[0].finish_reason == "cancelled" and done[0].tokens_used == 0
    still_serving(http)


def test_twenty_clients_at_once_on_one_model_all_complete(url: str, http: httpx.Client):
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
    finished: list[str] = []
    failures: list[BaseException] = []

    def ask(i: int) -> None:
        try:
            stream = client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": f"Say {i}."}],
                                                    max_tokens=12, temperature=0, stream=True)
            reasons = [c.choices[0].finish_reason for c in stream if c.choices and c.choices[0].finish_reason]
            finished.extend(r for r in reasons if r)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    assert not failures and len(finished) == 20 and set(finished) <= {"stop", "length"}
    still_serving(http)


def test_websocket_scopes_are_checked_for_host_origin_and_key():
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("ok")
        await websocket.close()

    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    config = ServerConfig(api_key=KEY)
    app = SecurityMiddleware(Starlette(routes=[WebSocketRoute("/ws", echo)]), config)
    with serving(app) as base:
        ws_url = base.replace("http://", "ws://") + "/ws"
        good = {"Authorization": f"Bearer {KEY}"}
        with connect(ws_url, additional_headers=good) as ws:
            assert ws.recv() == "ok"
        with connect(ws_url, subprotocols=[f"openai-insecure-api-key.{KEY}"]) as ws:  # type: ignore[list-item]
            assert ws.recv() == "ok"
        port = int(base.rsplit(":", 1)[1])
        attempts = [(ws_url, {}), (ws_url, {**good, "Origin": "http://evil.example"}),
                    (f"ws://evil.example:{port}/ws", good)]  # a rebinding page's Host, on our socket
        for target, headers in attempts:
            with pytest.raises(InvalidStatus) as refused:
                connect(target, additional_headers=headers,
                        sock=socket.create_connection(("127.0.0.1", port))).close()
            assert refused.value.response.status_code == 403


def test_binding_beyond_loopback_needs_an_api_key():
    from runanywhere import ConfigurationError

    with pytest.raises(ConfigurationError, match="API key"):
        ServerConfig(host="0.0.0.0")
    assert not ServerConfig(host="0.0.0.0", api_key=KEY).loopback and ServerConfig(host="::1").loopback


def test_server_limits_are_checked_when_configured():
    from runanywhere import ConfigurationError

    for bad in ({"max_sequences": 0}, {"n_ctx": -1}, {"max_queue": 0}):
        with pytest.raises(ConfigurationError, match=next(iter(bad))):
            ServerConfig(**bad)


def test_serve_refuses_a_public_address_without_a_key(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]):
    from runanywhere.cli.main import main

    monkeypatch.delenv("RUNANYWHERE_API_KEY", raising=False)
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "needs an API key" in capsys.readouterr().err


def test_a_full_queue_is_429_with_retry_after_until_a_place_frees():
    from runanywhere.server.errors import APIError, error_response
    from runanywhere.server.state import ServerState

    state = ServerState(ServerConfig(max_queue=2))
    first, _second = state.admit(CHAT), state.admit(CHAT)
    with pytest.raises(APIError) as full:
        state.admit(CHAT)
    response = error_response(full.value)
    assert response.status_code == 429 and response.headers["retry-after"] == "1"
    first()
    first()  # releasing twice frees one place only
    state.admit(CHAT)
    assert state.metrics.queue_depth[CHAT] == 2


def test_metrics_are_prometheus_text_with_requests_and_speeds(http: httpx.Client):
    assert http.post("/v1/chat/completions", json=chat()).status_code == 200
    text = http.get("/metrics").text
    assert 'runanywhere_requests_total{path="/v1/chat/completions",status="200"}' in text
    assert f'runanywhere_queue_depth{{model="{CHAT}"}} 0' in text
    assert f'runanywhere_time_to_first_token_ms{{model="{CHAT}"}}' in text
    # the chat model batches by default: how many generations it runs at once, and how many run and wait now
    assert f'runanywhere_max_sequences{{model="{CHAT}"}} {default_max_sequences(4096)}' in text
    assert f'runanywhere_running_sequences{{model="{CHAT}"}} 0' in text
    assert f'runanywhere_queued_sequences{{model="{CHAT}"}} 0' in text


def test_health_is_503_with_retry_after_until_the_start_up_models_are_loaded():
    from starlette.testclient import TestClient

    app = create_app(ServerConfig(models=(CHAT,), allowed_hosts=("testserver",)))
    loading = TestClient(app).get("/health")  # no lifespan: the start-up load has not finished
    assert loading.status_code == 503 and loading.headers["retry-after"] == "1"
    assert loading.json()["status"] == "loading"
