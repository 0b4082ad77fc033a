"""The page's downloads (the Export tab's exports, the Batch tab's labelled files): owner-only files served where
they are (no copy in Gradio's cache), removed within the hour and when the app stops."""

import os
import time
from pathlib import Path

from gradio.utils import get_upload_folder
from gradio_client import handle_file
from servers import PageClient, running_in_process

from playground.exports import MAX_AGE, ExportFiles


def copies_in_gradios_cache(name: str) -> list[Path]:
    return list(Path(get_upload_folder()).rglob(name)) if Path(get_upload_folder()).exists() else []


def assert_served_where_it_is(written: Path, downloaded: str, client_dir: Path, text: str) -> None:
    """The client got the file the service wrote (holding ``text``), readable by the app's user alone, and
    Gradio kept no copy of it."""
    assert Path(downloaded).parent.parent == client_dir
    assert Path(downloaded).read_text() == written.read_text() and text in written.read_text()
    assert oct(written.stat().st_mode & 0o777) == "0o600"
    assert copies_in_gradios_cache(written.name) == [], f"Gradio kept a copy of {written.name} in its cache"


def test_a_page_export_is_owner_only_served_without_a_copy_and_gone_at_shutdown(tmp_path):
    with running_in_process(tmp_path / "server") as app:
        client = PageClient(app.url, download_files=tmp_path / "client")
        _, _, _, prediction_id = client.predict("export me", "score", api_name="/moderate")
        client.predict(prediction_id, "", "ana", api_name="/confirm")
        downloaded, count = client.predict("full", "any", "", api_name="/export")
        client.close()
        (written,) = app.service.export_dir.glob("feedback-full-*.jsonl")
        assert count == "1 verdicts exported as full."
        assert_served_where_it_is(written, downloaded, tmp_path / "client", "export me")
    assert not written.exists() and not app.service.export_dir.exists()


def test_a_batch_tab_output_is_owner_only_served_without_a_copy_and_gone_at_shutdown(tmp_path):
    rows = tmp_path / "rows.txt"
    rows.write_text("label me in a batch\nand me\n", encoding="utf-8")
    with running_in_process(tmp_path / "server") as app:
        client = PageClient(app.url, download_files=tmp_path / "client")
        downloaded, summary = client.predict(handle_file(str(rows)), "jsonl", False, api_name="/batch")
        client.close()
        (written,) = app.service.export_dir.glob("batch-*.jsonl")
        assert summary.startswith("2 of 2 rows labelled")
        assert_served_where_it_is(written, downloaded, tmp_path / "client", "label me in a batch")
    assert not written.exists() and not app.service.export_dir.exists()


def test_files_older_than_the_hour_are_swept(tmp_path):
    exports = ExportFiles(tmp_path / "exports-folder", every=60)
    exports.folder.mkdir()
    old, new = exports.new_path("feedback-oig"), exports.folder / "feedback-oig-new.jsonl"
    for path in (old, new):
        path.write_text("{}\n")
    an_hour_ago = time.time() - MAX_AGE
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert exports.sweep() == [old]
    assert not old.exists() and new.exists()
    exports.close()
    assert not exports.folder.exists()
