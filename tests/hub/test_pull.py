"""`localr1 pull` and `localr1 rm` end to end against the local Hub server: the real command line, huggingface_hub's
real requests, real files in the Hub cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localr1.cli import main
from localr1.hub.cache import hub_cache_dir, repo_folder
from localr1.paths import models_dir
from localr1.pulled import load_record
from localr1.registry import resolve_model, user_models_path
from tests.fixtures.hub_server import FakeHub, sha256_of

REPO = "test-org/tiny-demo-GGUF"
# The demo's shape, published as two quant types (same bytes under two names: the planner only sees the names).
ENTRY = """
[models.tiny-demo]
display_name = "Tiny demo"
hf_repo = "test-org/tiny-demo"
architecture = "llama"
reasoning = false
layers = 30
hidden_size = 576
intermediate_size = 1536
attention_heads = 9
kv_heads = 3
head_dim = 64
vocab_size = 49152
context_length = 8192
license = "apache-2.0"

[[models.tiny-demo.gguf]]
repo = "test-org/tiny-demo-GGUF"
files.Q8_0 = { file = "tiny-demo-Q8_0.gguf", size_gb = 0.094 }
files.Q4_K_M = { file = "tiny-demo-Q4_K_M.gguf", size_gb = 0.094 }
"""


def _register(text: str = ENTRY) -> None:
    path = user_models_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def published(hub: FakeHub, demo_copy: Path) -> FakeHub:
    _register()
    hub.add_repo(REPO, {"tiny-demo-Q8_0.gguf": demo_copy, "tiny-demo-Q4_K_M.gguf": demo_copy})
    return hub


@pytest.mark.model
def test_pull_auto_plans_downloads_links_and_the_model_runs(published: FakeHub, demo_copy: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pull", "tiny-demo", "--hardware", "laptop-16gb"]) == 0
    err = capsys.readouterr().err
    assert "chose tiny-demo Q8_0 (0.09 GB) from test-org/tiny-demo-GGUF" in err
    link = models_dir() / "tiny-demo" / "tiny-demo-Q8_0.gguf"
    assert link.is_symlink() and repo_folder(REPO) in link.resolve().parents  # used in place, not copied
    assert sha256_of(link) == sha256_of(demo_copy)
    record = load_record("tiny-demo")["pulls"][0]
    assert record["commit"] == published.repos[REPO].commit and record["quant"] == "Q8_0"
    assert record["files"][0]["sha256"] == sha256_of(demo_copy) and record["files"][0]["downloaded"]
    assert resolve_model("tiny-demo").path == link.parent  # the key's folder: the planner picks among its files
    assert main(["run", "-m", "tiny-demo", "-t", "0", "-n", "4", "--json", "Say hi."]) == 0
    ran = json.loads(capsys.readouterr().out)
    assert ran["stop_reason"] and ran["plan"]["file"] == str(link)


def test_pull_r1_shows_the_choice_and_the_runner_up(published: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pull", "r1", "--hardware", "laptop-16gb", "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "best R1 distill here: r1-qwen-14b Q4_K_M (8.99 GB) from unsloth/DeepSeek-R1-Distill-Qwen-14B-GGUF" in err
    assert "runner-up: r1-llama-8b Q8_0 (8.54 GB)" in err
    assert published.requests == []  # chosen before anything is downloaded


def test_models_fit_ranks_every_distill(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--fit", "--hardware", "laptop-8gb", "--json"]) == 0
    rows = {r["key"]: r for r in json.loads(capsys.readouterr().out)["fit"]}
    assert rows["r1-llama-8b"]["verdict"] == "chosen" and rows["r1-qwen-7b"]["verdict"] == "runner-up"
    assert rows["r1-qwen-14b"]["verdict"] == "does not fit" and rows["r1-qwen-7b"]["size_gb"] > 0


def test_offline_pull_fails_at_once(published: FakeHub, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["pull", "tiny-demo"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "offline mode is on" in err
    assert published.requests == []
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["models", "--json"]) == 0  # other commands keep working offline


def test_pull_refuses_a_disk_too_small_before_downloading(published: FakeHub,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    published.find("tiny-demo-Q8_0.gguf").claimed_size = 10**18
    assert main(["pull", "tiny-demo", "--quant", "Q8_0"]) == 1
    assert "GB free" in capsys.readouterr().err
    assert published.blob_requests("tiny-demo-Q8_0.gguf") == []
    assert not load_record("tiny-demo")["pulls"] and not (models_dir() / "tiny-demo").exists()


def test_pull_of_a_repo_the_hub_does_not_have_is_a_404_message(hub: FakeHub,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    _register()
    assert main(["pull", "tiny-demo", "--quant", "Q8_0"]) == 1
    assert "test-org/tiny-demo-GGUF was not found on http://127.0.0.1" in capsys.readouterr().err


def test_pull_from_a_hanging_hub_times_out(published: FakeHub, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LOCALR1_HUB_TIMEOUT", "1")
    published.faults.hang = True
    assert main(["pull", "tiny-demo", "--quant", "Q8_0"]) == 1
    assert "did not answer within 1 s" in capsys.readouterr().err


def test_rm_removes_what_localr1_downloaded_and_keeps_another_tools_file(
        published: FakeHub, demo_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from huggingface_hub import hf_hub_download

    # another tool downloaded the Q4_K_M file into the shared cache first
    theirs = Path(hf_hub_download(REPO, "tiny-demo-Q4_K_M.gguf", endpoint=published.url,
                                  cache_dir=hub_cache_dir()))
    assert main(["pull", "tiny-demo", "--quant", "Q4_K_M"]) == 0
    assert main(["pull", "tiny-demo", "--quant", "Q8_0"]) == 0
    pulls = load_record("tiny-demo")["pulls"]
    assert [p["files"][0]["downloaded"] for p in pulls] == [False, False]  # same bytes: the blob was already there
    capsys.readouterr()
    assert main(["rm", "tiny-demo"]) == 0
    out = capsys.readouterr().out
    assert "kept" in out and theirs.exists() and theirs.resolve().exists()
    assert not (models_dir() / "tiny-demo").exists() and not load_record("tiny-demo")["pulls"]
    assert main(["rm", "tiny-demo"]) == 1  # nothing of localr1's left


def test_rm_deletes_a_blob_localr1_downloaded(published: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pull", "tiny-demo", "--quant", "Q8_0"]) == 0
    blob = Path(load_record("tiny-demo")["pulls"][0]["files"][0]["blob"])
    assert blob.exists()
    assert main(["rm", "tiny-demo", "--dry-run"]) == 0 and blob.exists()
    assert main(["rm", "tiny-demo"]) == 0
    assert not blob.exists() and not (models_dir() / "tiny-demo").exists()
    assert "removed" in capsys.readouterr().out


def test_the_command_line_default_speed_wish_is_the_planners() -> None:
    from localr1.commands import pull
    from localr1.pull_choice import DEFAULT_MIN_TPS, FAMILY

    assert (pull.DEFAULT_MIN_TPS, pull.FAMILY) == (DEFAULT_MIN_TPS, FAMILY)


def test_pull_of_a_file_whose_size_the_hub_misreports_fails_and_keeps_nothing(
        published: FakeHub, demo_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "tiny-demo-Q8_0.gguf"
    published.find(name).claimed_size = demo_copy.stat().st_size + 4096
    for _run in range(2):
        assert main(["pull", "tiny-demo", "--quant", "Q8_0"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("localr1: error: the Hub lists tiny-demo-Q8_0.gguf") and "Traceback" not in err
        assert "the Hub's size and the file disagree, so nothing was kept" in err[-1]
        assert not list((repo_folder(REPO) / "blobs").iterdir())
    assert len(published.blob_requests(name)) == 4  # each run: the body, then one resume answered 416
    assert not load_record("tiny-demo")["pulls"] and not (models_dir() / "tiny-demo").exists()
