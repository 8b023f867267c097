"""`localr1 quantize` without -o installs the ladder under the model's key, and the runtime finds it there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localr1.errors import ConfigError
from localr1.hardware import probe
from localr1.install import install_target, recognise, slugify, source_shape
from localr1.paths import models_dir
from localr1.plan import plan_model
from localr1.registry import load_registry
from tests.cli_helpers import localr1
from tests.fixtures.checkpoints import qwen2_spec, write_checkpoint


def _config_folder(folder: Path, key: str) -> Path:
    """A checkpoint folder whose config.json has the public shapes of a models.toml entry (no weights needed)."""
    e = load_registry()[key]
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({
        "model_type": e.architecture, "num_hidden_layers": e.layers, "hidden_size": e.hidden_size,
        "intermediate_size": e.intermediate_size, "num_attention_heads": e.attention_heads,
        "num_key_value_heads": e.kv_heads, "vocab_size": e.vocab_size,
    }))
    return folder


def _ladder_of(folder: Path, source: Path) -> None:
    """A folder holding a ladder made from `source` (what the pipeline's manifest records)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps({"source": {"path": str(source.resolve())}}))


@pytest.mark.parametrize("key", ["r1-qwen-1.5b", "r1-qwen-7b", "r1-llama-8b", "r1-qwen-14b", "r1-qwen-32b",
                                 "r1-llama-70b"])
def test_a_distill_checkpoint_is_recognised_by_its_shapes(tmp_path: Path, key: str) -> None:
    source = _config_folder(tmp_path / "some-download", key)  # the folder name says nothing
    target = install_target(source)
    assert (target.key, target.how, target.folder) == (key, "recognised", models_dir() / key)


def test_the_real_r1_gguf_header_is_recognised(r1_header_path: Path) -> None:
    assert recognise(source_shape(r1_header_path)) == "r1-qwen-7b"


def test_an_unknown_model_gets_a_key_from_its_name_that_never_takes_another_ladder(tmp_path: Path) -> None:
    first = write_checkpoint(tmp_path / "a" / "R1 Distill (Tiny)", qwen2_spec())
    target = install_target(first)
    assert (target.key, target.how) == ("r1-distill-tiny", "new")
    _ladder_of(target.folder, first)
    assert install_target(first).key == "r1-distill-tiny"  # the same source resumes its own ladder
    other = write_checkpoint(tmp_path / "b" / "R1 Distill (Tiny)", qwen2_spec(seed=5))
    assert install_target(other).key == "r1-distill-tiny-2"
    (models_dir() / "r1-distill-tiny-2").mkdir()
    (models_dir() / "r1-distill-tiny-2" / "notes.txt").write_text("someone else's")
    assert install_target(other).key == "r1-distill-tiny-3"


def test_a_name_that_is_a_family_key_does_not_claim_it(tmp_path: Path) -> None:
    tiny = write_checkpoint(tmp_path / "r1-qwen-7b", qwen2_spec())  # the name, not the shapes
    assert install_target(tiny).key == "r1-qwen-7b-2"


def test_a_recognised_key_holding_another_source_is_an_error(tmp_path: Path) -> None:
    source = _config_folder(tmp_path / "mine", "r1-qwen-7b")
    _ladder_of(models_dir() / "r1-qwen-7b", tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="--as KEY"):
        install_target(source)
    assert install_target(source, "r1-qwen-7b-mine").key == "r1-qwen-7b-mine"


@pytest.mark.parametrize("key, message", [("My Model", "not a usable key"), ("../x", "not a usable key"),
                                          ("demo", "ships in a package")])
def test_bad_keys_are_refused(tmp_path: Path, key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        install_target(_config_folder(tmp_path / "c", "r1-qwen-7b"), key)


def test_slugify() -> None:
    assert slugify("DeepSeek-R1-Distill-Qwen-7B") == "deepseek-r1-distill-qwen-7b"
    assert slugify("  [bold]évil/../name  ") == "bold-vil-.-name"
    assert slugify("///") == "model"


def test_as_does_not_go_with_an_output_folder(tmp_path: Path) -> None:
    result = localr1("quantize", str(tmp_path), "-o", str(tmp_path / "out"), "--as", "x", "--no-eval")
    assert result.returncode == 1 and "--as installs into the models folder" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_installed_folder_is_planned_among_its_variants_with_measured_quality(tmp_path: Path) -> None:
    """The first file of the folder is not what loads: the planner picks by the measured KLD."""
    from localr1.planner.mix import mixed_tensors
    from localr1.planner.shape import ModelShape
    from localr1.planner.synthetic import write_synthetic_gguf

    folder = models_dir() / "r1-qwen-1.5b"
    folder.mkdir(parents=True)
    shape = ModelShape("qwen2", 2, 256, 512, 4, 2, 64, 1000, 32768)
    for name in ("a-first.gguf", "b-second.gguf"):
        write_synthetic_gguf(folder / name, shape, mixed_tensors(shape, "F16"), {})
    (folder / "quality.json").write_text(json.dumps({"variants": [
        {"file": "a-first.gguf", "kld_mean": 0.4}, {"file": "b-second.gguf", "kld_mean": 0.001}]}))
    (folder / "imatrix.gguf").write_bytes(b"GGUF")  # not a model: never a candidate
    plan = plan_model("r1-qwen-1.5b", probe(check_offload=False))
    assert plan.config.variant.path == folder / "b-second.gguf"
    assert plan.config.variant.kld == 0.001 and plan.config.variant.kld_source.startswith("measured")
    assert [a.variant.path for a in plan.alternatives] == [folder / "a-first.gguf"]
    info = localr1("info", "r1-qwen-1.5b", "--json")  # what the runtime opens for the key
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["path"] == str(folder / "b-second.gguf")


@pytest.mark.model
def test_quantize_installs_then_models_plan_and_run_use_the_key(tmp_path: Path) -> None:
    checkpoint = write_checkpoint(tmp_path / "R1-Distill-Tiny", qwen2_spec())
    done = localr1("quantize", str(checkpoint), "--types", "Q8_0,Q4_0", "--no-imatrix", "--threads", "2",
                   "--speed-tokens", "4", timeout=600)
    assert done.returncode == 0, done.stderr
    folder = models_dir() / "r1-distill-tiny"
    assert "installing as r1-distill-tiny (new)" in done.stdout
    assert "localr1 chat --model r1-distill-tiny" in done.stdout
    assert {"R1-Distill-Tiny-Q8_0.gguf", "R1-Distill-Tiny-Q4_0.gguf", "quality.json"} <= {p.name for p in
                                                                                          folder.iterdir()}

    listed = localr1("models", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [r for r in json.loads(listed.stdout)["installed"] if r["key"] == "r1-distill-tiny"]
    assert {r["type"] for r in rows} == {"F16", "Q8_0", "Q4_0"}  # the converted base is a variant too
    assert all(r["kld_measured"] and r["fit"]["fits"] and r["fit"]["context"] >= 8192 for r in rows)
    assert sum(r["chosen"] for r in rows) == 1

    planned = json.loads(localr1("plan", "r1-distill-tiny", "--hardware", "laptop-8gb", "--json").stdout)
    assert Path(planned["variant"]["path"]).parent == folder
    assert planned["variant"]["kld_source"] == "measured (quality.json)"

    ran = localr1("run", "--model", "r1-distill-tiny", "--quant", "Q4_0", "-n", "4", "-t", "0", "--json", "Hi")
    assert ran.returncode == 0, ran.stderr
    data = json.loads(ran.stdout)
    assert data["plan"]["file"] == str(folder / "R1-Distill-Tiny-Q4_0.gguf") and data["quant"] == "Q4_0"
    assert data["load"]["context_size"] == data["plan"]["context"] >= 8192

    again = localr1("quantize", str(checkpoint), "--types", "Q8_0,Q4_0", "--no-imatrix", "--no-eval", timeout=600)
    assert again.returncode == 0 and "installing as r1-distill-tiny (new)" in again.stdout  # resumed, not -2
    assert "0 built" in again.stdout
