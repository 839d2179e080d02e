"""The Storage tab in headless Chromium: quota bar, models by last use, the eviction plan shown before a pull,
a pull from a local mirror with live progress, delete with confirmation, a pinned model.

The server runs on a store of its own (a 5 MB quota) whose catalog has three small models served by a
local mirror on 127.0.0.1; the mirror holds the second half of one file until the page has shown progress.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runanywhere import EventBus, SDKConfig
from runanywhere.models.catalog import Catalog
from runanywhere.models.manager import ModelLibrary

from .browser import Browser, chromium
from .conftest import blob, model_entry
from .fileserver import FileServer

MB = 1_000_000


@pytest.fixture(scope="module")
def mirror() -> Iterator[FileServer]:
    srv = FileServer()
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def library(mirror: FileServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelLibrary]:
    """Three 2 MB models: ``old`` and ``kept`` stored (``kept`` pinned, as a loaded model is), ``fresh`` not."""
    files = {name: blob(2 * MB, seed=i) for i, name in enumerate(("old", "kept", "fresh"))}
    for name, data in files.items():
        mirror.add(f"/mirror/{name}/{name}.gguf", data, stall_after=MB if name == "fresh" else None)
    library = ModelLibrary(SDKConfig(home=tmp_path_factory.mktemp("store"), mirror=mirror.url + "/mirror",
                                     storage_quota_bytes=5 * MB, retry_backoff_s=0.01),
                           catalog=Catalog(), events=EventBus())
    for name, data in files.items():
        library.register(model_entry(name, {f"{name}.gguf": (None, data)}))
    library.pull("old")
    library.pull("kept")
    with library.pin("kept"):
        yield library


@pytest.fixture(scope="module")
def browser(library: ModelLibrary) -> Iterator[Browser]:
    from runanywhere.server.app import create_app
    from runanywhere.server.config import ServerConfig

    from .localserver import serving

    with serving(create_app(ServerConfig(), library=library)) as port, chromium(f"http://127.0.0.1:{port}") as session:
        yield session
    assert session.blocked == [], f"requests left loopback: {session.blocked}"


def used(page) -> int:
    return int(page.locator("#quota-bar").get_attribute("data-used"))


def row(page, model: str):
    return page.locator(f"#storage-table tr[data-model={model}]")


def test_storage_pulls_with_progress_after_showing_what_it_evicts_then_deletes(browser: Browser, mirror, library):
    page = browser.open("Storage")
    page.wait_for_selector("#storage-table tr[data-model]")
    assert used(page) == 4 * MB
    assert row(page, "old").get_attribute("data-status") == "stored"
    assert "pinned" in row(page, "kept").inner_text()
    assert row(page, "kept").locator("button").is_disabled()  # a model in use cannot be deleted
    assert row(page, "fresh").get_attribute("data-status") == "remote"
    browser.screenshot(page, "storage")

    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    row(page, "fresh").get_by_role("button", name="Pull fresh").click()
    page.wait_for_selector("#storage-plan:has-text('evicts old')")
    bar = row(page, "fresh").get_by_role("progressbar", name="Downloading fresh")
    bar.wait_for(timeout=30_000)  # shown while the mirror holds the second half back
    assert float(bar.get_attribute("value") or bar.evaluate("p => p.value")) < 1
    browser.screenshot(page, "storage-pulling")
    mirror.behaviour["/mirror/fresh/fresh.gguf"].release.set()
    page.wait_for_selector("#storage-table tr[data-model=fresh][data-status=stored]", timeout=30_000)
    assert "evicts old" in dialogs[0]
    assert row(page, "old").get_attribute("data-status") == "remote"
    assert used(page) == 4 * MB

    row(page, "fresh").get_by_role("button", name="Delete fresh").click()
    page.wait_for_selector("#storage-table tr[data-model=fresh][data-status=remote]", timeout=30_000)
    assert "Delete fresh" in dialogs[-1]
    assert used(page) == 2 * MB
    assert [m.id for m in library.store.models()] == ["kept"]
    assert page.locator("#storage-error").inner_text() == ""
