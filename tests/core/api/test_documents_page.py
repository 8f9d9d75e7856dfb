"""The chat page's documents view in a real browser (Debian's chromium, headless) over
real HTTP: a write token lists, uploads and deletes a domain's uploads and follows the
refresh each change queued until it is indexed; the API's refusals are shown in words;
a read token lists but is offered no changes; the write token is never stored."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ...helpers.servers import chromium, serving


pytestmark = pytest.mark.integration

KETTLE = b"# Kettles\n\nDescale the kettle every month with white vinegar to keep the water tasting clean.\n"


def write_manifest(root: Path) -> Path:
    folder = root / "shelf"
    (folder / "knowledge").mkdir(parents=True)
    (folder / "knowledge" / "tea.md").write_text("# Tea\n\nGreen tea brews best at eighty degrees.\n", encoding="utf-8")
    path = folder / "shelf.yaml"
    path.write_text(
        textwrap.dedent("""
            fourfold: 1
            domain: shelf
            title: Shelf uploads
            knowledge:
              sources: [{path: knowledge}, {use: upload, with: {max_mb: 0.01}}]
              chunking: {max_tokens: 64, overlap: 8}
              gate: {min_chunks: 1}
            retrieval: {use: bm25, with: {top_k: 3}}
            generation: {use: extractive}
            trust: {answerability: off}
        """),
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Domain 'shelf' (a folder and uploads of up to 0.01 MB), indexed, served by uvicorn
    in a thread; no worker runs, so the test runs each queued refresh itself."""
    from fourfold.api import ApiOptions, create_app
    from fourfold.api.assistants import Assistants
    from fourfold.index import refresh
    from fourfold.plugins import PluginHost
    from fourfold.settings import Settings

    root = tmp_path_factory.mktemp("documents-page")
    settings = Settings(home=root / "home")
    assistants = Assistants.from_manifests([write_manifest(root)], host=PluginHost(settings), settings=settings)
    assert refresh(assistants.domains["shelf"]).published
    app = create_app(assistants=assistants, options=ApiOptions(warm_up=False))
    with serving(app) as url:
        yield url, assistants


@pytest.fixture()
def page(served):
    with chromium() as context:
        page = context.new_page()
        url, assistants = served
        page.goto(url)
        page.fill("#token", assistants.tokens["shelf"].tokens[0])
        page.click("#token-form button[type=submit]")
        expect(page.locator("#domain")).to_have_value("shelf")
        page.click("#manage-documents")
        expect(page.locator("#documents-domain")).to_have_value("shelf")
        yield page


def expect(locator):
    # Not page.wait_for_function: it evaluates a string, which the page's policy forbids.
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def upload(page, name: str, body: bytes, path: str | None = None) -> None:
    page.set_input_files("#upload-file", files=[{"name": name, "mimeType": "application/octet-stream", "buffer": body}])
    expect(page.locator("#upload-path")).to_have_value(name)  # the path defaults to the file's name
    if path is not None:
        page.fill("#upload-path", path)
    page.click("#upload")


def test_a_write_token_uploads_follows_the_refresh_and_deletes(page, served):
    from fourfold.index import refresh

    _, assistants = served
    domain = assistants.domains["shelf"]
    write_token = assistants.write_tokens["shelf"].tokens[0]
    page.fill("#write-token", write_token)
    page.click("#write-token-form button[type=submit]")
    expect(page.locator("#documents-view")).to_be_visible()
    expect(page.locator("#documents-empty")).to_be_visible()
    expect(page.locator("#documents-error")).to_have_text("")

    upload(page, "kettle.md", KETTLE, path="home/kettle.md")
    row = page.locator('#documents-list tr[data-path="home/kettle.md"]')
    expect(row).to_contain_text(f"{len(KETTLE)} B")
    progress = page.locator("#refresh-progress")
    expect(progress).to_contain_text("waiting for a worker")  # queued; no worker runs here
    report = refresh(domain)  # the worker's part, in-process
    assert "upload/home/kettle.md" in report.added
    expect(progress).to_contain_text(f"indexed: index {report.version} is published", timeout=20_000)
    expect(page.locator("#index-info")).to_contain_text(report.version)

    page.once("dialog", lambda dialog: dialog.dismiss())
    row.get_by_role("button", name="Delete home/kettle.md").click()
    expect(row).to_be_visible()  # not confirmed: kept
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete home/kettle.md").click()
    expect(row).to_have_count(0)
    expect(page.locator("#documents-empty")).to_be_visible()
    expect(progress).to_contain_text("deleted; refresh queued")
    report = refresh(domain)
    assert report.removed == ["upload/home/kettle.md"]
    expect(progress).to_contain_text(f"indexed: index {report.version} is published", timeout=20_000)

    # the write token lives in the page's memory only
    stored = page.evaluate("JSON.stringify([localStorage, sessionStorage])")
    assert write_token not in stored


def test_the_apis_refusals_are_shown_in_words(page, served):
    _, assistants = served
    page.fill("#write-token", assistants.write_tokens["shelf"].tokens[0])
    page.click("#write-token-form button[type=submit]")
    expect(page.locator("#documents-view")).to_be_visible()
    error = page.locator("#documents-error")

    upload(page, "tool.exe", b"MZ\x90\x00")
    expect(error).to_contain_text("tool.exe: Not a file type this assistant reads:")
    expect(error).to_contain_text(".md")  # the message lists the types that are read
    upload(page, "big.md", b"# Big\n\n" + b"word " * 4000)
    expect(error).to_contain_text("big.md: Too large:")
    upload(page, "draft.md", b"# Draft\n", path="notes/.draft.md")
    expect(error).to_contain_text("notes/.draft.md: Refused:")
    upload(page, "up.md", b"# Up\n", path="../up.md")
    expect(error).to_contain_text("could leave the uploads")
    expect(page.locator("#documents-list tr")).to_have_count(0)

    page.fill("#write-token", "not-a-token-of-anyone")
    page.click("#write-token-form button[type=submit]")
    expect(error).to_contain_text("Unknown token")
    expect(page.locator("#documents-view")).to_be_hidden()


def test_a_read_token_lists_but_is_offered_no_changes(page, served):
    _, assistants = served
    page.fill("#write-token", assistants.tokens["shelf"].tokens[0])
    page.click("#write-token-form button[type=submit]")
    expect(page.locator("#documents-error")).to_contain_text("That is a read token")
    expect(page.locator("#documents-view")).to_be_visible()
    expect(page.locator("#upload-form")).to_be_hidden()
    expect(page.locator("#documents-list button")).to_have_count(0)


def test_a_change_no_refresh_could_be_queued_for_is_kept_and_said_so(page, served, monkeypatch):
    from fourfold.worker import client

    def no_broker(*args, **kwargs):
        raise ConnectionError("broker at redis://nowhere:6379 refused the connection")

    monkeypatch.setattr(client, "request_refresh", no_broker)
    _, assistants = served
    page.fill("#write-token", assistants.write_tokens["shelf"].tokens[0])
    page.click("#write-token-form button[type=submit]")
    upload(page, "later.md", b"# Later\n\nIndexed at the next refresh.\n")
    expect(page.locator('#documents-list tr[data-path="later.md"]')).to_be_visible()
    progress = page.locator("#refresh-progress")
    expect(progress).to_contain_text("The change is kept, but the refresh could not be queued")
    expect(progress).to_contain_text("refused the connection")
