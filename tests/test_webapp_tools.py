"""The web app's server side without a browser: the demo tools, the /app endpoints and the static files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runanywhere import EventBus, InvalidInputError, SDKConfig
from runanywhere.models.manager import ModelLibrary
from runanywhere.server.demo_tools import DEMO_TOOLS, calculate, current_time, run_tool, weather

STATIC = Path(__file__).resolve().parents[1] / "src" / "runanywhere" / "server" / "static"


@pytest.mark.parametrize(("expression", "result"), [
    ("17 * 23", 391), ("2 + 3 * 4", 14), ("(2 + 3) * 4", 20), ("-7 // 2", -4), ("7 % 3", 1), ("2 ** 10", 1024),
    ("1 / 4", 0.25), ("10 / 4 * 2", 5), ("3 × 4", 12), ("2^3", 8), ("1.5 + 1.5", 3)])
def test_the_calculator_does_arithmetic(expression: str, result: float):
    assert calculate(expression) == {"expression": expression, "result": result}


@pytest.mark.parametrize("expression", [
    "__import__('os').system('true')", "open('/etc/passwd')", "x + 1", "(1).__class__", "[1, 2]", "1 if 1 else 2",
    "lambda: 1", "1; 2", "", "   ", "True + 1", "'a' * 3"])
def test_the_calculator_refuses_anything_but_arithmetic(expression: str):
    with pytest.raises(InvalidInputError, match="calculator"):
        calculate(expression)


@pytest.mark.parametrize(("expression", "why"), [
    ("1 / 0", "divides by zero"), ("5 % 0", "divides by zero"), ("9 ** 9999", "exponents"),
    ("(-8) ** 0.5", "finite real"), ("10.0 ** 308 * 10", "finite real"), ("1 +" * 100 + "1", "longer than")])
def test_the_calculator_refuses_what_has_no_sane_result(expression: str, why: str):
    with pytest.raises(InvalidInputError, match=why):
        calculate(expression)


def test_weather_is_fixed_demo_data_and_says_so():
    paris = weather("paris")
    assert paris["city"] == "Paris" and "demo data" in paris["source"]
    assert weather("Paris") == paris
    with pytest.raises(InvalidInputError, match="no demo data for 'Atlantis'"):
        weather("Atlantis")


def test_current_time_in_a_time_zone():
    assert current_time("Europe/Paris")["timezone"] == "Europe/Paris"
    assert re.fullmatch(r"\d\d:\d\d", current_time()["time"])
    with pytest.raises(InvalidInputError, match="unknown time zone"):
        current_time("Mars/Olympus")


def test_tools_are_run_by_name_with_their_declared_arguments():
    assert run_tool("calculator", {"expression": "17 * 23"})["result"] == 391
    assert set(DEMO_TOOLS) == {"calculator", "get_current_time", "get_weather"}
    assert all(tool.schema()["type"] == "function" for tool in DEMO_TOOLS.values())
    with pytest.raises(InvalidInputError, match="unknown tool 'rm'"):
        run_tool("rm", {})
    with pytest.raises(InvalidInputError, match="unexpected \\['code'\\]"):
        run_tool("calculator", {"expression": "1", "code": "x"})
    with pytest.raises(InvalidInputError, match="missing \\['city'\\]"):
        run_tool("get_weather", {})


@pytest.fixture
def client(tmp_path: Path):
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from runanywhere.server.webapp import app_routes, static_routes

    library = ModelLibrary(SDKConfig(home=tmp_path / "home", offline=True), events=EventBus())
    with TestClient(Starlette(routes=[*app_routes(library), *static_routes()])) as test_client:
        yield test_client


def test_app_endpoints_answer_in_openai_shapes(client):
    assert {t["function"]["name"] for t in client.get("/app/tools").json()["tools"]} == set(DEMO_TOOLS)
    assert client.post("/app/tools/calculator", json={"expression": "17 * 23"}).json()["result"]["result"] == 391
    refused = client.post("/app/tools/calculator", json={"expression": "__import__('os')"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_input"
    assert client.post("/app/tools/calculator", content=b"{not json").status_code == 400
    storage = client.get("/app/storage").json()
    assert storage["used_bytes"] == 0 and storage["model_count"] == 0
    assert {"smollm2-135m-instruct-q4_1", "piper-en_US-joe-medium"} <= {m["id"] for m in storage["models"]}
    plan = client.get("/app/storage/plan", params={"model": "smollm2-135m-instruct-q4_1"}).json()
    assert plan["fits"] and plan["evicts"] == [] and plan["needed_bytes"] > 90_000_000
    assert client.get("/app/storage/plan", params={"model": "nope"}).status_code == 404
    assert client.get("/app/storage/plan").status_code == 400


def test_the_app_is_served_at_the_root_with_its_modules(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for src in re.findall(r'(?:src|href)="([^"#:]+)"', page.text):
        assert client.get(f"/{src}").status_code == 200, src
    script = client.get("/js/main.js")
    assert "javascript" in script.headers["content-type"]


def test_the_app_needs_nothing_from_elsewhere():
    """Offline: no CDN, no web font, no remote script or style in any shipped file."""
    files = [p for p in STATIC.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} == {".html", ".css", ".js"}
    for path in files:
        text = path.read_text()
        assert not re.search(r"https?://(?!\$\{|localhost|127\.0\.0\.1)", text), path
        assert "@import" not in text and "@font-face" not in text, path
        imports = re.findall(r"""from\s+['"]([^'"]+)['"]""", text)
        assert all(spec.startswith("./") for spec in imports), (path, imports)
