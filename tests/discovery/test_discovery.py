"""Discovery over folder trees laid out the way LM Studio, Ollama and the Hugging Face cache lay them out, with the
demo GGUF (a real model file) hard-linked into each."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from localr1.cli import main
from localr1.discovery import scan
from localr1.registry import find_local, load_registry, resolve_model

DIGEST = "sha256:" + "ab" * 32


def _place(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return target


def _ollama_manifest(root: Path, model: str, tag: str, layers: object) -> Path:
    path = root / "manifests" / "registry.ollama.ai" / "library" / model / tag
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                                "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                           "digest": "sha256:" + "cd" * 32, "size": 487},
                                "layers": layers}), encoding="utf-8")
    return path


def _ollama_tree(root: Path, model_file: Path) -> Path:
    blob = _place(model_file, root / "blobs" / DIGEST.replace(":", "-"))
    _ollama_manifest(root, "smollm2", "135m", [
        {"mediaType": "application/vnd.ollama.image.model", "digest": DIGEST, "size": blob.stat().st_size},
        {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + "ef" * 32, "size": 300},
    ])
    broken = root / "manifests" / "registry.ollama.ai" / "library" / "broken" / "latest"
    broken.parent.mkdir(parents=True)
    broken.write_text("{ not json", encoding="utf-8")
    _ollama_manifest(root, "gone", "1b", [{"mediaType": "application/vnd.ollama.image.model",
                                           "digest": "sha256:" + "00" * 32, "size": 5}])
    return blob


def _hub_tree(cache: Path, model_file: Path, repo: str, name: str) -> Path:
    folder = cache / ("models--" + repo.replace("/", "--"))
    sha = hashlib.sha256(model_file.read_bytes()).hexdigest()
    blob = _place(model_file, folder / "blobs" / sha)
    commit = "1" * 40
    link = folder / "snapshots" / commit / name
    link.parent.mkdir(parents=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)
    return link


def test_models_are_found_in_lm_studio_ollama_the_hub_cache_and_extra_folders(
        demo_path: Path, tmp_path: Path, private_home: Path) -> None:
    lms = _place(demo_path, Path(os.environ["LOCALR1_LMSTUDIO_MODELS"]) / "bartowski" / "SmolLM2-GGUF" / "smol.gguf")
    ollama_blob = _ollama_tree(Path(os.environ["OLLAMA_MODELS"]), _copy(demo_path, tmp_path / "ollama-src.gguf"))
    hub = _hub_tree(Path(os.environ["HF_HUB_CACHE"]), _copy(demo_path, tmp_path / "hub-src.gguf"),
                    "HuggingFaceTB/SmolLM2-GGUF", "smol-Q4_1.gguf")
    extra = _place(_copy(demo_path, tmp_path / "extra-src.gguf"), tmp_path / "mine" / "nested" / "m.gguf")

    found = scan(load_registry().values(), folders=[tmp_path / "mine", tmp_path / "not-there"])
    by_source = {m.source: m for m in found.models}
    assert set(by_source) == {"lm-studio", "ollama", "hub-cache", "folder"}
    assert by_source["lm-studio"].path == lms and by_source["lm-studio"].name == "bartowski/SmolLM2-GGUF/smol.gguf"
    assert by_source["ollama"].path == ollama_blob and by_source["ollama"].name == "smollm2:135m"
    assert by_source["hub-cache"].path == hub
    assert by_source["hub-cache"].name == "HuggingFaceTB/SmolLM2-GGUF/smol-Q4_1.gguf"
    assert by_source["folder"].path == extra
    for model in found.models:
        assert (model.key, model.family, model.quant, model.reasoning) == ("demo", "llama", "Q4_1", False)
        assert model.size == demo_path.stat().st_size
    warnings = "\n".join(found.warnings)
    assert "Ollama model broken" in warnings and "cannot be read" in warnings
    assert "Ollama model gone:1b" in warnings and "missing" in warnings
    assert "not-there" in warnings


def _copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)  # separate files: each place holds its own copy
    return target


def test_one_file_reached_twice_is_listed_once(demo_path: Path, tmp_path: Path) -> None:
    cache = Path(os.environ["HF_HUB_CACHE"])
    link = _hub_tree(cache, _copy(demo_path, tmp_path / "src.gguf"), "a/b", "x.gguf")
    second = link.parent.parent / ("2" * 40) / "x.gguf"  # an older snapshot of the same blob
    second.parent.mkdir()
    second.symlink_to(os.path.relpath(link.resolve(), second.parent))
    found = scan(load_registry().values(), folders=[])
    assert [m.path for m in found.models] == [link]  # the snapshot refs/main points at


def test_a_registry_name_finds_a_copy_lm_studio_downloaded(r1_vocab_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """`--model r1-qwen-7b` uses an LM Studio copy in place (a real R1 7B header, identified by shape + template)."""
    lms = _place(r1_vocab_path, Path(os.environ["LOCALR1_LMSTUDIO_MODELS"]) / "lmstudio-community" /
                 "DeepSeek-R1-Distill-Qwen-7B-GGUF" / "DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf")
    assert [m.path for m in find_local("r1-qwen-7b")] == [lms]
    resolved = resolve_model("r1-qwen-7b")
    assert resolved.path == lms and resolved.entry is not None and resolved.entry.key == "r1-qwen-7b"
    assert main(["info", "r1-qwen-7b", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == str(lms)


def test_a_model_nowhere_on_disk_says_how_to_get_it() -> None:
    from localr1.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="localr1 pull r1-qwen-14b"):
        resolve_model("r1-qwen-14b")


def test_extra_folders_come_from_the_settings(demo_path: Path, tmp_path: Path) -> None:
    from localr1.settings import Settings, load_settings, save_settings

    extra = _place(demo_path, tmp_path / "shelf" / "demo.gguf")
    save_settings(Settings(model_folders=(str(tmp_path / "shelf"),)))
    assert load_settings().model_folders == (str(tmp_path / "shelf"),)
    assert [m.path for m in scan(load_registry().values()).models] == [extra]


def test_the_planner_plans_the_copy_another_tool_downloaded(r1_vocab_path: Path) -> None:
    """A name found only as an LM Studio copy is planned (and so loaded) from that file, not from the standard
    ladder of variants that are not on disk."""
    from localr1.engine.params import LoadRequest
    from localr1.hardware import load_profile
    from localr1.loader import plan_for

    lms = _place(r1_vocab_path, Path(os.environ["LOCALR1_LMSTUDIO_MODELS"]) / "lmstudio-community" /
                 "DeepSeek-R1-Distill-Qwen-7B-GGUF" / "DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf")
    resolved, plan = plan_for("r1-qwen-7b", LoadRequest(), load_profile("laptop-16gb"))
    assert resolved.path == lms
    assert plan.config.variant.path == lms and plan.config.variant.file_type == "Q4_K_M"
