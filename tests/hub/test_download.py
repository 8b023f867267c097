"""Downloads through huggingface_hub against a local server that serves the demo GGUF the way the Hub does."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from localr1.hub.cache import hub_cache_dir, read_ref, repo_folder
from localr1.hub.client import repo_snapshot
from localr1.hub.download import PARTIAL_SUFFIX, check_space, fetch_file
from localr1.hub.errors import ChecksumError, HubError, HubTimeoutError, NotEnoughSpaceError, OfflineError
from tests.fixtures.hub_server import FakeHub, sha256_of

REPO = "test-org/demo-GGUF"
NAME = "demo-Q4_1.gguf"


def _publish(hub: FakeHub, demo_copy: Path, tmp_path: Path) -> str:
    readme = tmp_path / "README.md"
    readme.write_text("# demo\n", encoding="utf-8")
    return hub.add_repo(REPO, {NAME: demo_copy, "README.md": readme})


def test_a_gguf_lands_in_the_hub_cache_checked_and_linked(hub: FakeHub, demo_copy: Path, tmp_path: Path) -> None:
    commit = _publish(hub, demo_copy, tmp_path)
    snapshot = repo_snapshot(REPO)
    assert snapshot.commit == commit and snapshot.files[NAME].sha256 == sha256_of(demo_copy)
    seen: list[int] = []
    got = fetch_file(snapshot, NAME, progress=lambda _n, done, _t: seen.append(done))
    folder = repo_folder(REPO)
    assert got.downloaded and got.blob == folder / "blobs" / sha256_of(demo_copy)
    assert got.path == folder / "snapshots" / commit / NAME and got.path.is_symlink()
    assert got.path.resolve() == got.blob.resolve() and sha256_of(got.path) == sha256_of(demo_copy)
    assert read_ref(folder) == commit
    assert seen[-1] == demo_copy.stat().st_size and len(seen) > 3  # progress while it streamed
    assert folder.is_relative_to(hub_cache_dir())
    readme = fetch_file(snapshot, "README.md")  # a small non-LFS file, checked against its git object id
    assert readme.path.read_text() == "# demo\n"

    again = fetch_file(repo_snapshot(REPO), NAME)
    assert not again.downloaded and len(hub.blob_requests(NAME)) == 1  # already there: not fetched twice


def test_an_interrupted_download_resumes_where_it_stopped(hub: FakeHub, slice_copy: Path, tmp_path: Path) -> None:
    _publish(hub, slice_copy, tmp_path)
    snapshot = repo_snapshot(REPO)
    cut = 8 * 1024 * 1024

    def interrupt(_name: str, done: int, _total: int | None) -> None:
        if done >= cut:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fetch_file(snapshot, NAME, progress=interrupt)
    partial = repo_folder(REPO) / "blobs" / (snapshot.files[NAME].sha256 or "")
    partial = partial.with_name(partial.name + PARTIAL_SUFFIX)
    kept = partial.stat().st_size
    assert kept >= cut

    got = fetch_file(repo_snapshot(REPO), NAME)
    assert got.downloaded and sha256_of(got.path) == sha256_of(slice_copy) and not partial.exists()
    second = hub.blob_requests(NAME)[-1]
    assert second.get("range") == f"bytes={kept}-"  # only the rest was asked for


def test_a_corrupt_download_is_caught_and_fetched_again(hub: FakeHub, slice_copy: Path, tmp_path: Path) -> None:
    _publish(hub, slice_copy, tmp_path)
    hub.faults.corrupt[NAME] = 1
    got = fetch_file(repo_snapshot(REPO), NAME)
    assert sha256_of(got.path) == sha256_of(slice_copy)
    assert len(hub.blob_requests(NAME)) == 2


def test_a_file_corrupt_every_time_is_refused_and_removed(hub: FakeHub, slice_copy: Path, tmp_path: Path) -> None:
    commit = _publish(hub, slice_copy, tmp_path)
    hub.faults.corrupt[NAME] = 5
    with pytest.raises(ChecksumError, match="does not match the hash the Hub published"):
        fetch_file(repo_snapshot(REPO), NAME)
    folder = repo_folder(REPO)
    assert not list((folder / "blobs").iterdir())  # neither the blob nor a partial file is kept
    assert not (folder / "snapshots" / commit / NAME).exists()


def test_a_damaged_file_already_in_the_cache_is_replaced(hub: FakeHub, slice_copy: Path, tmp_path: Path) -> None:
    _publish(hub, slice_copy, tmp_path)
    got = fetch_file(repo_snapshot(REPO), NAME)
    got.blob.chmod(0o644)
    with got.blob.open("r+b") as fh:
        fh.seek(1000)
        fh.write(b"\0\0\0\0")
    again = fetch_file(repo_snapshot(REPO), NAME)
    assert again.downloaded and sha256_of(again.path) == sha256_of(slice_copy)


def test_unknown_repo_and_unknown_file_are_one_line_errors(hub: FakeHub, demo_copy: Path, tmp_path: Path) -> None:
    _publish(hub, demo_copy, tmp_path)
    with pytest.raises(HubError, match=r"nobody/nothing was not found on http://127\.0\.0\.1"):
        repo_snapshot("nobody/nothing")
    with pytest.raises(HubError, match="has no revision v9"):
        repo_snapshot(REPO, "v9")
    snapshot = repo_snapshot(REPO)
    with pytest.raises(HubError, match=r"has no file missing\.gguf"):
        fetch_file(snapshot, "missing.gguf")


def test_a_server_that_hangs_times_out_with_a_clear_message(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALR1_HUB_TIMEOUT", "1")
    hub.faults.hang = True
    start = time.monotonic()
    with pytest.raises(HubTimeoutError, match=r"did not answer within 1 s.*LOCALR1_HUB_TIMEOUT"):
        repo_snapshot(REPO)
    assert time.monotonic() - start < 10


def test_offline_mode_fails_before_any_request(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="offline mode is on"):
        repo_snapshot(REPO)
    assert hub.requests == []


def test_no_server_at_all_is_an_offline_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(OfflineError, match="cannot reach the Hub"):
        repo_snapshot(REPO)


def test_a_disk_too_small_is_refused_before_downloading(hub: FakeHub, demo_copy: Path, tmp_path: Path) -> None:
    _publish(hub, demo_copy, tmp_path)
    hub.find(NAME).claimed_size = 10**18  # an exabyte: no disk has that much free
    snapshot = repo_snapshot(REPO)
    with pytest.raises(NotEnoughSpaceError, match=r"needs 1000000000.00 GB but .* GB free"):
        check_space(snapshot, [NAME])
    assert hub.blob_requests(NAME) == []
    assert check_space(snapshot, ["README.md"]) > 0  # a small file fits


@pytest.mark.parametrize(("extra", "words"), [(1000, "has only"), (-1000, "sent")])
def test_a_size_that_disagrees_with_the_body_fails_once_and_keeps_nothing(
        hub: FakeHub, slice_copy: Path, tmp_path: Path, extra: int, words: str) -> None:
    _publish(hub, slice_copy, tmp_path)
    real = slice_copy.stat().st_size
    hub.find(NAME).claimed_size = real + extra  # the listing and X-Linked-Size; the body is the real file
    for _run in range(2):  # a re-run fails the same way: it never says to resume a file no resume can finish
        with pytest.raises(HubError) as caught:
            fetch_file(repo_snapshot(REPO), NAME)
        message = str(caught.value)
        assert f"lists {NAME} from {REPO} as {real + extra} bytes but its server {words} {real}" in message
        assert "nothing was kept" in message and "resume" not in message
        assert not list((repo_folder(REPO) / "blobs").iterdir())  # no blob, no partial file
    ranges = [h.get("range") for h in hub.blob_requests(NAME)]
    if extra > 0:  # the whole body, then one resume the server answers 416, per run
        assert ranges == [None, f"bytes={real}-"] * 2
    else:
        assert ranges == [None, None]


def test_a_partial_file_the_size_cannot_be_reached_from_is_removed(hub: FakeHub, slice_copy: Path,
                                                                   tmp_path: Path) -> None:
    """What an earlier run kept holds the whole body, but the Hub lists more: the resume's 416 ends it."""
    _publish(hub, slice_copy, tmp_path)
    hub.find(NAME).claimed_size = slice_copy.stat().st_size + 1
    snapshot = repo_snapshot(REPO)
    blobs = repo_folder(REPO) / "blobs"
    blobs.mkdir(parents=True)
    partial = blobs / f"{snapshot.files[NAME].sha256}{PARTIAL_SUFFIX}"
    partial.write_bytes(slice_copy.read_bytes())
    with pytest.raises(HubError, match="the Hub's size and the file disagree"):
        fetch_file(snapshot, NAME)
    assert not partial.exists()
    assert [h.get("range") for h in hub.blob_requests(NAME)] == [f"bytes={slice_copy.stat().st_size}-"]
