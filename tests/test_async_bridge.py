"""The thread-to-asyncio bridge: many waiting async consumers cost no thread, and cancelling stops the work.

The language model is the test-written tiny GGUF (``tiny_llm``). Its worker is
held busy by a job waiting on an event, so every async stream below is
provably still waiting while the loop does other work; no assertion is about
time (``GUARD_S`` only keeps a regression from hanging the suite).
"""

from __future__ import annotations

import asyncio
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from runanywhere import (
    CancelToken,
    EmbeddingGenerator,
    EventBus,
    GenerationCompleted,
    GenerationResult,
    GenerationStream,
    ModelLoadCompleted,
    ModelNotLoadedError,
    ModelUnloaded,
    SDKEvent,
    TextGenerator,
)
from runanywhere.core.bridge import Channel, run_in_thread

from .conftest import LibraryFactory, blob, model_entry
from .fileserver import FileServer
from .tinymodels import write_tiny_llm

GUARD_S = 120
STREAMS = 50
ONE = 1  # llama.cpp thread: on a machine shared with other work, a tiny model decodes ~100x faster on one thread


@pytest.fixture
def generator(make_library: LibraryFactory, bus: EventBus) -> Iterator[TextGenerator]:
    gen = TextGenerator(make_library(offline=True), events=bus)
    yield gen
    gen.unload()


def _hold_worker(gen: TextGenerator) -> threading.Event:
    """Keep the model's worker busy until the returned event is set: every job queues behind it."""
    release = threading.Event()
    gen._require().worker.submit(release.wait)
    return release


async def _read(stream: GenerationStream) -> tuple[str, GenerationResult]:
    text = "".join([piece async for piece in stream.atext()])
    return text, await stream.aresult()


def test_fifty_waiting_streams_leave_threads_and_the_loop_free(generator: TextGenerator, tiny_llm: Path,
                                                                 server: FileServer):
    generator.load_model(tiny_llm, n_threads=ONE)
    url = server.add("/ping.txt", b"pong")

    async def scenario() -> tuple[int, int, bytes, list[bool], list[tuple[str, GenerationResult]]]:
        release = _hold_worker(generator)
        threads_before = threading.active_count()
        streams = [generator.agenerate_stream(f"question {i}", max_tokens=6, temperature=0.0)
                   for i in range(STREAMS)]
        tasks = [asyncio.create_task(_read(stream)) for stream in streams]
        await asyncio.sleep(0)  # every consumer runs to its first wait for an item
        threads_waiting = threading.active_count() - threads_before
        to_thread = await asyncio.to_thread(sum, [1, 2, 3])
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=GUARD_S).read())
        still_waiting = [not task.done() for task in tasks]
        release.set()
        return threads_waiting, to_thread, body, still_waiting, await asyncio.gather(*tasks)

    threads_waiting, to_thread, body, still_waiting, results = asyncio.run(asyncio.wait_for(scenario(), GUARD_S))
    assert threads_waiting == 0  # no thread waits on behalf of the 50 consumers
    assert (to_thread, body) == (6, b"pong")  # the default executor and the loop stayed free ...
    assert all(still_waiting)  # ... while all 50 were waiting
    assert len(results) == STREAMS
    for text, result in results:
        assert result.finish_reason == "length" and result.output_tokens == 6
        assert text == result.text


def test_cancelling_waiting_tasks_cancels_their_work(generator: TextGenerator, tiny_llm: Path,
                                                     events: list[SDKEvent]):
    generator.load_model(tiny_llm, n_threads=ONE)
    tokens = [CancelToken() for _ in range(STREAMS)]

    async def scenario() -> list[GenerationResult | BaseException]:
        release = _hold_worker(generator)
        tasks = [asyncio.create_task(generator.agenerate(f"question {i}", max_tokens=6, cancel=token))
                 for i, token in enumerate(tokens)]
        await asyncio.sleep(0)
        for task in tasks[::2]:
            task.cancel()
        release.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    outcomes = asyncio.run(asyncio.wait_for(scenario(), GUARD_S))
    cancelled, finished = outcomes[::2], outcomes[1::2]
    assert all(isinstance(o, asyncio.CancelledError) for o in cancelled)
    assert all(token.cancelled for token in tokens[::2])
    assert not any(token.cancelled for token in tokens[1::2])
    assert all(isinstance(o, GenerationResult) and o.finish_reason == "length" for o in finished)
    reasons = [e.finish_reason for e in events if isinstance(e, GenerationCompleted)]
    assert sorted(reasons) == ["cancelled"] * (STREAMS // 2) + ["length"] * (STREAMS // 2)


def test_aload_aprefill_aunload(generator: TextGenerator, tiny_llm: Path, events: list[SDKEvent]):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}]

    async def scenario() -> tuple[str, int, int, int]:
        model_id = await generator.aload_model(tiny_llm, n_ctx=1024, n_threads=ONE)
        evaluated = await generator.aprefill(messages)
        again = await generator.aprefill(messages)
        blocking_again = generator.prefill(messages)
        await generator.aunload()
        return model_id, evaluated, again, blocking_again

    model_id, evaluated, again, blocking_again = asyncio.run(asyncio.wait_for(scenario(), GUARD_S))
    assert model_id == "tiny" and evaluated > 10
    assert again == blocking_again < 3  # the conversation was already in the KV cache
    assert not generator.is_loaded
    with pytest.raises(ModelNotLoadedError):
        generator.prefill(messages)
    kinds = [type(e) for e in events if isinstance(e, ModelLoadCompleted | ModelUnloaded)]
    assert kinds == [ModelLoadCompleted, ModelUnloaded]


def test_aload_replaces_the_loaded_model(generator: TextGenerator, tiny_llm: Path, tmp_path: Path,
                                         events: list[SDKEvent]):
    other = write_tiny_llm(tmp_path / "other.gguf", seed=1)
    generator.load_model(tiny_llm, n_threads=ONE)
    assert asyncio.run(generator.aload_model(other, n_threads=ONE)) == "other"
    assert generator.loaded_model == "other"
    assert generator.generate("hi", max_tokens=3).output_tokens == 3
    changes = [(type(e).__name__, e.model_id) for e in events if isinstance(e, ModelLoadCompleted | ModelUnloaded)]
    assert changes == [("ModelLoadCompleted", "tiny"), ("ModelUnloaded", "tiny"), ("ModelLoadCompleted", "other")]


def test_async_embeddings_match_blocking_ones(tmp_path: Path, make_library: LibraryFactory, bus: EventBus):
    model = write_tiny_llm(tmp_path / "embed.gguf", pooling="mean")
    embedder = EmbeddingGenerator(make_library(offline=True), events=bus)

    async def scenario() -> tuple[object, object]:
        await embedder.aload_model(model, n_threads=ONE)
        return await embedder.aembed_batch(["one text", "another"]), await embedder.aembed("one text")

    try:
        batch, single = asyncio.run(asyncio.wait_for(scenario(), GUARD_S))
        assert (batch == embedder.embed_batch(["one text", "another"])).all()  # type: ignore[union-attr]
        assert (single == embedder.embed("one text")).all()  # type: ignore[union-attr]
    finally:
        embedder.unload()


def test_apull_downloads_and_cancelling_the_task_stops_the_download(make_library: LibraryFactory,
                                                                    server: FileServer):
    data = blob(2 * 2**20)
    library = make_library()
    library.register(model_entry("quick", {"w.gguf": (server.add("/w.gguf", data), data)}))
    library.register(model_entry("stalled", {"s.gguf": (server.add("/s.gguf", data, stall_after=2**20), data)}))
    token = CancelToken()

    async def scenario() -> object:
        local = await library.apull("quick")
        loop, downloading = asyncio.get_running_loop(), asyncio.Event()
        task = asyncio.create_task(library.apull("stalled", cancel=token,
                                                 progress=lambda *_: loop.call_soon_threadsafe(downloading.set)))
        await downloading.wait()  # bytes arrive (then the server stalls)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return local

    try:
        local = asyncio.run(asyncio.wait_for(scenario(), GUARD_S))
    finally:
        server.behaviour["/s.gguf"].release.set()
    assert local.main_file.read_bytes() == data  # type: ignore[attr-defined]
    assert token.cancelled
    assert library.store.get("stalled") is None


def test_cancelling_aload_model_stops_the_download_and_its_worker(make_library: LibraryFactory, bus: EventBus,
                                                                  server: FileServer, tiny_llm: Path):
    data = tiny_llm.read_bytes()
    library = make_library()
    library.register(model_entry("slow-llm", {"slow.gguf": (server.add("/slow.gguf", data, stall_after=1000), data)}))
    generator = TextGenerator(library, events=bus)

    async def scenario() -> None:
        loop, downloading = asyncio.get_running_loop(), asyncio.Event()
        task = asyncio.create_task(generator.aload_model(
            "slow-llm", n_threads=ONE, progress=lambda *_: loop.call_soon_threadsafe(downloading.set)))
        await downloading.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(asyncio.wait_for(scenario(), GUARD_S))
    finally:
        server.behaviour["/slow.gguf"].release.set()
    assert not generator.is_loaded and library.store.get("slow-llm") is None
    workers = [t for t in threading.enumerate() if t.name.startswith("runanywhere-llm-slow-llm")]
    for thread in workers:
        thread.join(GUARD_S)
    assert not any(t.is_alive() for t in workers)


def test_channel_hands_items_to_a_blocking_or_an_async_reader():
    blocking: Channel[int] = Channel()
    for i in range(3):
        blocking.put(i)
    blocking.close()
    assert list(blocking) == [0, 1, 2]

    async def scenario() -> list[int]:
        channel: Channel[int] = Channel()

        def produce(_: CancelToken) -> None:
            for i in range(100):
                channel.put(i)
            channel.close()

        reader = asyncio.create_task(_collect(channel))
        await run_in_thread(produce, name="test-producer")
        return await reader

    assert asyncio.run(asyncio.wait_for(scenario(), GUARD_S)) == list(range(100))


async def _collect(channel: Channel[int]) -> list[int]:
    return [item async for item in channel]
