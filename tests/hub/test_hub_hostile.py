"""The Hub client against a hostile or broken Hub (a mirror in HF_ENDPOINT): nothing lands outside its cache folder."""

from __future__ import annotations

import os
import resource
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from localr1.hub.cache import hub_cache_dir
from localr1.hub.client import repo_snapshot
from localr1.hub.download import fetch_file
from localr1.hub.errors import HubError
from tests.cli_helpers import LOCALR1
from tests.fixtures.hub_server import FakeHub

REPO = "evil-org/checkpoint"
ANSWERS = {  # what a wrong HF_ENDPOINT (a web page, a proxy, a broken mirror) answers: status, headers, body
    "loop": (302, {"Location": "/loop/again"}, b""),
    "html": (200, {"Content-Type": "text/html"}, b"<html><body>Sign in to the Wi-Fi</body></html>"),
    "json": (200, {"Content-Type": "application/json"}, b'{"sha": 5, "siblings": "x"}'),
}


@pytest.fixture
def not_a_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 that answers every path under /MODE/ the way ANSWERS says."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            status, headers, body = ANSWERS[self.path.split("/")[1]]
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("mode", "words"), [("loop", "redirected"), ("html", "not the Hub's API"),
                                             ("json", "not the Hub's API")])
def test_an_endpoint_that_is_not_a_hub_is_a_one_line_error(not_a_hub: str, mode: str, words: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"{not_a_hub}/{mode}")
    with pytest.raises(HubError, match=words):
        repo_snapshot("test-org/anything")


def test_a_file_name_that_climbs_out_of_the_cache_is_refused(hub: FakeHub, slice_copy: Path) -> None:
    victim = hub_cache_dir().parent / "victim.safetensors"
    victim.parent.mkdir(parents=True, exist_ok=True)
    victim.write_text("the user's own file", encoding="utf-8")
    evil = "../../../../victim.safetensors"
    hub.add_repo(REPO, {evil: slice_copy})
    hub.faults.routes["/victim.safetensors"] = (REPO, evil)  # where the client's URL normalisation sends it
    with pytest.raises(HubError, match="outside"):
        fetch_file(repo_snapshot(REPO), evil)
    assert not victim.is_symlink() and victim.read_text(encoding="utf-8") == "the user's own file"


def test_a_commit_that_is_not_a_commit_id_is_refused(hub: FakeHub, slice_copy: Path) -> None:
    commit = hub.add_repo(REPO, {"model.safetensors": slice_copy}, commit="../../../../escape")
    hub.faults.routes[f"/{REPO}/resolve/{commit}/model.safetensors"] = (REPO, "model.safetensors")
    with pytest.raises(HubError, match="commit"):
        fetch_file(repo_snapshot(REPO), "model.safetensors")
    assert not (hub_cache_dir().parent.parent / "escape").exists()


def test_a_full_disk_mid_download_names_the_file_and_a_rerun_resumes(hub: FakeHub, slice_copy: Path) -> None:
    from tests.hub.test_pull import ENTRY, _register

    _register(ENTRY)
    hub.add_repo("test-org/tiny-demo-GGUF", {"tiny-demo-Q8_0.gguf": slice_copy})
    limit = 8 * 1024 * 1024

    def small_disk() -> None:  # RLIMIT_FSIZE: writes past it fail with EFBIG, as a full disk fails with ENOSPC
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    command = [*LOCALR1, "pull", "tiny-demo", "--quant", "Q8_0"]
    first = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ), preexec_fn=small_disk,
                           timeout=300, check=False)
    assert first.returncode == 1 and "Traceback" not in first.stderr, first.stderr
    last = first.stderr.strip().splitlines()[-1]
    assert "cannot write the download to" in last and ".incomplete" in last and "EFBIG" in last, last
    assert "run the same command again to resume" in last
    second = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ), timeout=300, check=False)
    assert second.returncode == 0, second.stderr
    ranges = [h.get("range") for h in hub.blob_requests("tiny-demo-Q8_0.gguf")]
    assert ranges[-1] == f"bytes={limit}-"  # resumed from what the first run kept
