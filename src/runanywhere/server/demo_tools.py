"""The web app's demo tools: current time, a safe arithmetic calculator (parsed, never ``eval``) and weather
from fixed demo data, each with its OpenAI function schema so the Chat tab can offer them to a model."""

from __future__ import annotations

import ast
import datetime as dt
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..core.errors import InvalidInputError

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_MAX_EXPRESSION = 200
_MAX_EXPONENT = 1000
_MAX_MAGNITUDE = 1e300

DEMO_WEATHER: Mapping[str, Mapping[str, Any]] = {
    "paris": {"temperature_c": 18, "condition": "partly cloudy", "humidity_percent": 62},
    "london": {"temperature_c": 14, "condition": "light rain", "humidity_percent": 81},
    "new york": {"temperature_c": 22, "condition": "sunny", "humidity_percent": 48},
    "tokyo": {"temperature_c": 24, "condition": "clear", "humidity_percent": 55},
    "san francisco": {"temperature_c": 16, "condition": "fog", "humidity_percent": 77},
}
"""Fixed weather: the demo has no network, so every answer says it is demo data."""


def calculate(expression: str) -> dict[str, Any]:
    """Evaluate arithmetic (numbers, + - * / // % ** and parentheses) by walking its syntax tree."""
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidInputError("calculator: give an arithmetic expression such as '17 * 23'")
    text = expression.strip().replace("×", "*").replace("÷", "/").replace("^", "**")
    if len(text) > _MAX_EXPRESSION:
        raise InvalidInputError(f"calculator: the expression is longer than {_MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise InvalidInputError(f"calculator: {expression!r} is not arithmetic ({exc.msg})") from None
    value = _evaluate(tree.body, expression)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)
    return {"expression": expression, "result": value}


def _evaluate(node: ast.AST, source: str) -> int | float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand, source))  # type: ignore[no-any-return]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left, source), _evaluate(node.right, source)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            raise InvalidInputError(f"calculator: exponents above {_MAX_EXPONENT} are refused")
        try:
            value = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise InvalidInputError(f"calculator: {source!r} divides by zero") from None
        if isinstance(value, complex) or (isinstance(value, float) and not math.isfinite(value)) or (
                abs(value) > _MAX_MAGNITUDE):
            raise InvalidInputError(f"calculator: {source!r} has no finite real result in range")
        return value  # type: ignore[no-any-return]
    raise InvalidInputError(f"calculator: {source!r} may only contain numbers, + - * / // % ** and parentheses")


def current_time(timezone: str | None = None) -> dict[str, Any]:
    """The current time, in ``timezone`` (an IANA name) or UTC."""
    name = timezone or "UTC"
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(f"time: unknown time zone {name!r}; use an IANA name such as 'Europe/Paris'") from None
    now = dt.datetime.now(zone)
    return {"timezone": name, "iso": now.isoformat(timespec="seconds"), "time": now.strftime("%H:%M"),
            "date": now.strftime("%A %d %B %Y")}


def weather(city: str) -> dict[str, Any]:
    """Weather for ``city`` from :data:`DEMO_WEATHER` (fixed demo data, labelled as such)."""
    if not isinstance(city, str) or not city.strip():
        raise InvalidInputError("weather: give a city name")
    known = DEMO_WEATHER.get(city.strip().lower())
    if known is None:
        raise InvalidInputError(f"weather: no demo data for {city!r}; the demo knows "
                                f"{', '.join(c.title() for c in DEMO_WEATHER)}")
    return {"city": city.strip().title(), **known, "source": "demo data (fixed, not a forecast)"}


@dataclass(frozen=True)
class DemoTool:
    """One tool: its OpenAI function schema and the function that answers it."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    run: Callable[..., dict[str, Any]]

    def schema(self) -> dict[str, Any]:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": dict(self.parameters)}}


def _string(description: str, max_length: int = 64) -> dict[str, Any]:
    """A string parameter, bounded: a forced call then always closes (a small model can repeat itself)."""
    return {"type": "string", "description": description, "maxLength": max_length}


DEMO_TOOLS: Mapping[str, DemoTool] = {tool.name: tool for tool in (
    DemoTool("calculator", "Evaluate an arithmetic expression exactly, e.g. '17 * 23'.",
             {"type": "object", "properties": {"expression": _string("the arithmetic expression", _MAX_EXPRESSION)},
              "required": ["expression"]}, lambda expression: calculate(expression)),
    DemoTool("get_current_time", "The current date and time.",
             {"type": "object", "properties": {"timezone": _string("IANA time zone, e.g. 'Europe/Paris'")}},
             lambda timezone=None: current_time(timezone)),
    DemoTool("get_weather", "Current weather in a city (demo data).",
             {"type": "object", "properties": {"city": _string("the city, e.g. 'Paris'")}, "required": ["city"]},
             lambda city: weather(city)),
)}


def run_tool(name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Run demo tool ``name`` with JSON ``arguments``; unknown tools and arguments are typed errors."""
    tool = DEMO_TOOLS.get(name)
    if tool is None:
        raise InvalidInputError(f"unknown tool {name!r}; the demo tools are {', '.join(DEMO_TOOLS)}")
    if not isinstance(arguments, Mapping):
        raise InvalidInputError(f"{name}: arguments must be a JSON object")
    allowed = set(tool.parameters.get("properties", {}))
    extra = set(arguments) - allowed
    missing = set(tool.parameters.get("required", ())) - set(arguments)
    if extra or missing:
        raise InvalidInputError(f"{name}: unexpected {sorted(extra)} / missing {sorted(missing)} arguments; "
                                f"it takes {sorted(allowed)}")
    return tool.run(**arguments)
