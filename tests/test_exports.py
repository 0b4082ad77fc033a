"""The page's downloads (the Export tab's exports, the Batch tab's labelled files): owner-only files served where
they are (no copy in Gradio's cache), removed within the hour and when the app stops."""

import os
import time
from pathlib import Path

from gradio.utils import get_upload_folder
from gradio_client import handle_file
from servers import PageClient, running_in_process

from playground.scratch import MAX_AGE, ScratchFolder


def copies_in_gradios_cache(written: Path) -> list[Path]:
    """The files of Gradio's upload folder (where the scratch folders are too) with the name of ``written``, but
    ``written`` itself."""
    return [path for path in Path(get_upload_folder()).rglob(written.name) if path != written]


def assert_served_where_it_is(written: Path, downloaded: str, client_dir: Path, text: str) -> None:
    """The client got the file the service wrote (holding ``text``), readable by the app's user alone, and
    Gradio kept no copy of it."""
    assert Path(downloaded).parent.parent == client_dir
    assert Path(downloaded).read_text() == written.read_text() and text in written.read_text()
    assert oct(written.stat().st_mode & 0o777) == "0o600"
    assert [oct(folder.stat().st_mode & 0o777) for folder in (written.parent, written.parent.parent)] == ["0o700"] * 2
    assert copies_in_gradios_cache(written) == [], f"Gradio kept a copy of {written.name} in its cache"


def test_a_page_export_is_owner_only_served_without_a_copy_and_gone_at_shutdown(tmp_path):
    with running_in_process(tmp_path / "server") as app:
        client = PageClient(app.url, download_files=tmp_path / "client")
        _, _, _, prediction_id = client.predict("export me", "score", api_name="/moderate")
        client.predict(prediction_id, "", "ana", api_name="/confirm")
        downloaded, count = client.predict("full", "any", "", api_name="/export")
        client.close()
        (written,) = app.service.scratch.exports.glob("feedback-full-*.jsonl")
        assert count == "1 verdicts exported as full."
        assert_served_where_it_is(written, downloaded, tmp_path / "client", "export me")
    assert not written.exists() and not app.service.scratch.exports.exists()


def test_a_batch_tab_output_is_owner_only_served_without_a_copy_and_gone_at_shutdown(tmp_path):
    rows = tmp_path / "rows.txt"
    rows.write_text("label me in a batch\nand me\n", encoding="utf-8")
    with running_in_process(tmp_path / "server") as app:
        client = PageClient(app.url, download_files=tmp_path / "client")
        downloaded, summary, *_ = client.predict(handle_file(str(rows)), "jsonl", False, api_name="/batch")
        client.close()
        (written,) = app.service.scratch.exports.glob("batch-*.jsonl")
        assert summary.startswith("2 of 2 rows labelled")
        assert_served_where_it_is(written, downloaded, tmp_path / "client", "label me in a batch")
    assert not written.exists() and not app.service.scratch.exports.exists()


def test_files_older_than_the_hour_are_swept(tmp_path):
    scratch = ScratchFolder(tmp_path, tmp_path / "feedback.db", every=60)
    old, new = scratch.new_export("feedback-oig"), scratch.exports / "feedback-oig-new.jsonl"
    (scratch.uploads / "sha").mkdir()
    old_upload, new_upload = scratch.uploads / "sha" / "old.csv", scratch.uploads / "new.csv"
    an_hour_ago = time.time() - MAX_AGE
    for path in (old, new, old_upload, new_upload):
        path.write_text("{}\n")
        if path in (old, old_upload):
            os.utime(path, (an_hour_ago, an_hour_ago))
    os.utime(old_upload.parent, (an_hour_ago, an_hour_ago))
    assert sorted(scratch.sweep()) == sorted([old, old_upload])
    assert not old.exists() and not old_upload.parent.exists() and new.exists() and new_upload.exists()
    scratch.close()
    assert not scratch.folder.exists()
