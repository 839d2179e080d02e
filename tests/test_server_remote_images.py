"""Remote image URLs: refused unless the operator opts in, and then fetched from public addresses only.

The suite cannot reach the internet, so a public host is played by an httpx transport answering for it and a
resolver naming its address: what is checked is the fetcher's own logic (https only, every address public, the
connection pinned to the checked address, each redirect re-checked, bounded image bodies). Through the server,
with the opt-in, URLs naming this machine are refused before anything is fetched.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import httpx
import openai
import pytest

from runanywhere import EventBus, SDKConfig
from runanywhere.models.manager import ModelLibrary
from runanywhere.server import ServerConfig, create_app
from runanywhere.server.errors import APIError
from runanywhere.server.remote_images import fetch_image, public_address

from .serving import serving
from .test_server_vision import asking, data_url, refusal
from .tinyvlm import image_tokens, register_tiny_vision

PNG = base64.b64decode(data_url(7).split(",", 1)[1])
HOSTS = {"images.example": ["93.184.215.14"], "intranet.example": ["10.0.0.5"], "split.example":
         ["93.184.215.14", "127.0.0.1"]}


async def fake_dns(host: str, port: int) -> list[str]:
    return HOSTS[host]


class FakeInternet(httpx.AsyncBaseTransport):
    """Answers for the public host by path; records every request it is sent."""

    def __init__(self, routes: dict[str, httpx.Response]) -> None:
        self.routes, self.seen = routes, []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((str(request.url), request.headers["host"], request.extensions.get("sni_hostname")))
        return self.routes[request.url.path]


def fetch(url: str, routes: dict[str, httpx.Response], max_bytes: int = 1 << 20) -> tuple[str, FakeInternet]:
    internet = FakeInternet(routes)
    got = asyncio.run(fetch_image(url, max_bytes=max_bytes, where="image", resolver=fake_dns, transport=internet))
    return got, internet


def png() -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "image/png"}, content=PNG)


def refused(url: str, routes: dict[str, httpx.Response], max_bytes: int = 1 << 20) -> APIError:
    with pytest.raises(APIError) as caught:
        fetch(url, routes, max_bytes)
    return caught.value


def test_a_public_image_is_fetched_from_the_checked_address_as_a_data_url():
    got, internet = fetch("https://images.example/cat.png", {"/cat.png": png()})
    assert got == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert internet.seen == [("https://93.184.215.14/cat.png", "images.example", "images.example")]


def test_each_redirect_is_checked_again():
    hop = {"/cat.png": httpx.Response(302, headers={"location": "https://images.example/real.png"}),
           "/real.png": png()}
    assert fetch("https://images.example/cat.png", hop)[0].startswith("data:image/png;base64,")
    inward = {"/cat.png": httpx.Response(302, headers={"location": "https://intranet.example/secret.png"})}
    error = refused("https://images.example/cat.png", inward)
    assert error.status == 400 and "10.0.0.5" in error.message
    downgrade = {"/cat.png": httpx.Response(301, headers={"location": "http://images.example/cat.png"})}
    assert "only https" in refused("https://images.example/cat.png", downgrade).message
    loop = {"/cat.png": httpx.Response(302, headers={"location": "/cat.png"})}
    assert "redirects" in refused("https://images.example/cat.png", loop).message


@pytest.mark.parametrize("url", ["https://intranet.example/a.png", "https://split.example/a.png",
                                 "https://127.0.0.1/a.png", "https://[::1]/a.png", "http://images.example/a.png",
                                 "ftp://images.example/a.png"])
def test_non_public_or_non_https_urls_are_refused_before_any_request(url: str):
    internet = FakeInternet({})
    with pytest.raises(APIError) as caught:
        asyncio.run(fetch_image(url, max_bytes=1000, where="image", resolver=fake_dns, transport=internet))
    assert caught.value.status == 400 and caught.value.error_code == "image_url_not_allowed"
    assert internet.seen == []


def test_a_body_that_is_not_an_image_too_big_or_an_error_is_refused():
    page = httpx.Response(200, headers={"content-type": "text/html"}, content=b"<html>")
    assert refused("https://images.example/a", {"/a": page}).error_code == "image_url_not_image"
    assert refused("https://images.example/a", {"/a": png()}, max_bytes=100).status == 413
    assert refused("https://images.example/a", {"/a": httpx.Response(404)}).error_code == "image_url_fetch_failed"


@pytest.mark.parametrize(("address", "public"), [
    ("8.8.8.8", True), ("2606:4700::1111", True), ("127.0.0.1", False), ("10.1.2.3", False),
    ("172.16.0.1", False), ("192.168.1.1", False), ("169.254.169.254", False), ("100.64.0.1", False),
    ("::1", False), ("fe80::1", False), ("fc00::1", False), ("::ffff:127.0.0.1", False), ("224.0.0.1", False),
    ("0.0.0.0", False)])
def test_only_globally_routable_unicast_addresses_are_public(address: str, public: bool):
    assert public_address(address) is public


@pytest.fixture(scope="module")
def opted_in(smollm2, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[openai.OpenAI, str]]:
    home = tmp_path_factory.mktemp("server-remote-images")
    library = ModelLibrary(SDKConfig(home=home / "store", offline=True), events=EventBus())
    model = register_tiny_vision(library, home / "tiny-vision", smollm2)
    app = create_app(ServerConfig(models=(model,), n_ctx=2048, remote_images=True), library=library,
                     events=EventBus())
    with serving(app) as url:
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0), model


@pytest.mark.parametrize("url", ["https://127.0.0.1:9/cat.png", "https://localhost/cat.png",
                                 "http://example.com/cat.png", "file:///etc/hostname"])
def test_an_opted_in_server_still_refuses_urls_naming_this_machine_or_not_https(opted_in, url: str):
    client, model = opted_in
    error = refusal(client, model, asking(url))
    assert error["code"] == "image_url_not_allowed" and error["param"] == "messages[0].content[1].image_url.url"


def test_an_opted_in_server_still_reads_data_urls(opted_in):
    client, model = opted_in
    reply = client.chat.completions.create(model=model, messages=asking(data_url(8)), temperature=0, max_tokens=4)
    assert (reply.model_extra or {})["timings"]["image_tokens"] == image_tokens()
