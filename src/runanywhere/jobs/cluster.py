"""Jobs on a Ray cluster: Ray Data streams the inputs through a pool of actors, each holding one loaded model.

Rows come back to this process, which writes them, so an input is in the output exactly once even when Ray
retries work after a worker died (its actors restart and the lost batches run again). Workers import this
same copy of runanywhere (its folder goes on their ``PYTHONPATH``) and read models from the store named by
the job's config on their own node, pulling a model there if it is missing.
"""

from __future__ import annotations

import itertools
import json
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .. import ConfigurationError, NetworkError
from .inputs import JobInput
from .spec import JobSpec
from .work import JobWorker, Row

CONNECT_TIMEOUT_S = 3.0
CHUNK = 4096  # inputs handed to Ray at once: a huge input list is never all in memory


class RayBatchWorker:
    """A Ray Data actor: one :class:`JobWorker`; a batch of ``id``/``value``/``error`` columns in, JSON rows out."""

    def __init__(self, spec: JobSpec) -> None:
        self.worker = JobWorker(spec)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        items = [JobInput(str(i), str(v), str(e)) for i, v, e in zip(batch["id"], batch["value"], batch["error"],
                                                                           strict=True)]
        return {"row": [json.dumps(row, ensure_ascii=False) for row in self.worker.run(items)]}


def connect(address: str, workers: int) -> str:
    """Join the Ray cluster at ``address`` (``auto``: the one this machine runs; ``local``: start one in this
    process with ``workers`` CPUs, gone when it ends); returns its address."""
    import ray

    if address not in ("auto", "local"):
        _reachable(address)
    src = str(Path(__file__).resolve().parents[2])
    own: dict[str, Any] = {"num_cpus": workers, "include_dashboard": False} if address == "local" else {}
    try:
        context = ray.init(address=address, ignore_reinit_error=True, log_to_driver=False,
                           runtime_env={"env_vars": {"PYTHONPATH": src}}, **own)
    except ConnectionError as exc:
        raise NetworkError(f"no Ray cluster at {address}: {exc}; start one with `ray start --head` or name "
                           "its address (host:port)") from None
    return str(getattr(context, "address_info", {}).get("gcs_address") or address)


def _reachable(address: str) -> None:
    """Refuse fast an address no Ray head answers at (ray.init would wait for a long time)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigurationError(f"a Ray address is host:port or 'auto', got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise NetworkError(f"no Ray cluster answers at {address}: {exc}") from None


def on_ray(workers: int) -> Any:
    """The row source running a job's batches on ``workers`` Ray actors (1 CPU each), in input order."""
    def source(spec: JobSpec, items: Iterator[JobInput]) -> Iterable[Row]:
        import ray.data

        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        while chunk := list(itertools.islice(items, CHUNK)):
            records = [{"id": i.id, "value": i.value, "error": i.error} for i in chunk]
            blocks = max(1, -(-len(records) // spec.batch_size))
            data = ray.data.from_items(records, override_num_blocks=blocks)
            # Ray Data restarts a dead actor and retries its batch (max_restarts / max_task_retries -1).
            rows = data.map_batches(RayBatchWorker, fn_constructor_kwargs={"spec": spec},
                                    batch_size=spec.batch_size, compute=ray.data.ActorPoolStrategy(size=workers),
                                    num_cpus=1, batch_format="numpy")
            for record in rows.iter_rows():
                yield json.loads(record["row"])
    return source
