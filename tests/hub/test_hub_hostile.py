"""The Hub client against a hostile or broken Hub (a mirror in HF_ENDPOINT): nothing lands outside its cache folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from localr1.hub.cache import hub_cache_dir
from localr1.hub.client import repo_snapshot
from localr1.hub.download import fetch_file
from localr1.hub.errors import HubError
from tests.fixtures.hub_server import FakeHub

REPO = "evil-org/checkpoint"


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
