"""The web app: its static files at ``/`` and the few endpoints only it needs under ``/app/`` (demo tools,
storage details with the eviction plan, the About facts). The OpenAI-compatible API does the rest."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..core.bridge import run_in_thread
from ..core.errors import InvalidInputError, ModelNotFoundError, SDKError
from .demo_tools import DEMO_TOOLS, run_tool

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import BaseRoute

    from ..models.manager import ModelLibrary

STATIC = ("runanywhere.server", "static")
PAGES = {"/": ("index.html", "text/html"), "/app.css": ("app.css", "text/css")}


def static_routes() -> list[BaseRoute]:
    """The app's page and stylesheet at ``/`` and ``/app.css``, its ES modules under ``/js``; any other path
    is left to the API (so an unknown ``/v1/...`` still gets the API's own 404)."""
    from importlib.resources import files

    from starlette.responses import FileResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    folder = files(STATIC[0]).joinpath(STATIC[1])

    def page(path: str, name: str, media_type: str) -> Route:
        async def serve(_request: Request) -> FileResponse:
            return FileResponse(str(folder.joinpath(name)), media_type=media_type)
        return Route(path, serve, methods=["GET", "HEAD"], name=f"webapp:{name}")

    routes: list[BaseRoute] = [page(path, name, media_type) for path, (name, media_type) in PAGES.items()]
    routes.append(Mount("/js", app=StaticFiles(packages=[(STATIC[0], f"{STATIC[1]}/js")]), name="webapp-js"))
    return routes


def app_routes(library: ModelLibrary) -> list[BaseRoute]:
    """``/app/tools``, ``/app/tools/{name}``, ``/app/storage``, ``/app/storage/plan`` and ``/app/about``."""
    from starlette.routing import Route

    about: dict[str, Any] = {}

    async def tools(_request: Request) -> JSONResponse:
        return _json({"tools": [tool.schema() for tool in DEMO_TOOLS.values()]})

    async def call_tool(request: Request) -> JSONResponse:
        try:
            arguments = json.loads(await request.body() or b"{}")
            return _json({"name": request.path_params["name"], "result": run_tool(request.path_params["name"],
                                                                                  arguments)})
        except json.JSONDecodeError as exc:
            return _error(InvalidInputError(f"tool arguments are not JSON: {exc.msg}"))
        except SDKError as exc:
            return _error(exc)

    async def storage(_request: Request) -> JSONResponse:
        return _json(await run_in_thread(lambda _token: storage_report(library), name="webapp-storage"))

    async def plan(request: Request) -> JSONResponse:
        try:
            report = await run_in_thread(lambda _token: eviction_report(library, request.query_params.get("model", "")),
                                         name="webapp-plan")
        except SDKError as exc:
            return _error(exc)
        return _json(report)

    async def about_page(_request: Request) -> JSONResponse:
        if not about:  # measuring the memory bandwidth takes about a second: once per server
            about.update(await run_in_thread(lambda _token: about_report(), name="webapp-about"))
        return _json(about)

    return [Route("/app/tools", tools, methods=["GET"]), Route("/app/tools/{name}", call_tool, methods=["POST"]),
            Route("/app/storage", storage, methods=["GET"]), Route("/app/storage/plan", plan, methods=["GET"]),
            Route("/app/about", about_page, methods=["GET"])]


def storage_report(library: ModelLibrary) -> dict[str, Any]:
    """Used / quota / free bytes, and every known model with its size, engine and state, last used first."""
    info = library.storage_info()
    store = library.store
    models = []
    for model in library.list_models():
        stored, entry = model.stored, model.entry
        models.append({
            "id": model.id, "name": entry.name, "category": str(entry.category.value), "engine": entry.engine,
            "status": model.status, "size_bytes": stored.size_bytes if stored else entry.size_bytes,
            "last_used_at": stored.last_used_at if stored else None,
            "pinned": bool(stored) and store.is_pinned(model.id)})
    models.sort(key=_recent_first)
    return {"used_bytes": info.used_bytes, "quota_bytes": info.quota_bytes, "disk_free_bytes": info.disk_free_bytes,
            "reclaimable_bytes": info.reclaimable_bytes, "model_count": info.model_count, "models": models}


def _recent_first(model: dict[str, Any]) -> tuple[bool, float, str]:
    used = model["last_used_at"]
    return used is None, -(used or 0.0), model["id"]


def eviction_report(library: ModelLibrary, model_id: str) -> dict[str, Any]:
    """What pulling ``model_id`` would evict (least recently used first), before the pull starts."""
    if not model_id:
        raise InvalidInputError("give the model to plan for: /app/storage/plan?model=ID")
    size = library.get(model_id).size_bytes
    if size is None:
        raise ModelNotFoundError(f"{model_id} does not state its size, so no eviction can be planned for it")
    plan = library.plan_eviction(size, exclude=(model_id,))
    return {"model": model_id, "needed_bytes": plan.needed_bytes, "available_bytes": plan.available_bytes,
            "evicts": plan.model_ids, "freed_bytes": plan.freed_bytes, "fits": plan.fits}


def about_report() -> dict[str, Any]:
    """The SDK version and the ``doctor`` facts, with the decode ceiling a 100 MB model can reach here."""
    from ..core.capabilities import detect_capabilities

    caps = detect_capabilities(measure_bandwidth=True)
    ceiling = caps.decode_ceiling_tokens_per_second(100 * 10**6)
    return {"version": __version__, "doctor": caps.to_dict(), "decode_ceiling_100mb_tokens_per_second": ceiling}


def _json(data: dict[str, Any]) -> JSONResponse:
    from starlette.responses import JSONResponse

    return JSONResponse(data)


def _error(exc: SDKError) -> JSONResponse:
    """OpenAI's error shape, 400 for bad input and 404 for an unknown model."""
    from starlette.responses import JSONResponse

    status = 404 if isinstance(exc, ModelNotFoundError) else 400
    return JSONResponse({"error": {"message": exc.message, "type": "invalid_request_error",
                                   "code": exc.code.name.lower()}}, status_code=status)
