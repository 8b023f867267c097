"""Bad input: each case fails with a clear one-line message and leaves no output file behind."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from localr1.errors import LocalR1Error
from quantize.convert.converter import convert
from quantize.convert.writer import DISK_MARGIN
from quantize.errors import CheckpointError, OutputError, UnsafeCheckpointError, UnsupportedModelError
from tests.quantize.helpers import edit_json, rewrite_shard

CopyCkpt = Callable[[Path], Path]


def convert_fails(ckpt: Path, out: Path, error: type[LocalR1Error], *words: str, **options: object) -> str:
    """Convert, expect `error` whose message holds every word, and no file in the output folder."""
    before = set(out.parent.iterdir())
    with pytest.raises(error) as caught:
        convert(ckpt, out, **options)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message
    assert set(out.parent.iterdir()) == before, "the failed conversion left a file behind"
    return message


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder / "model.gguf"


def test_missing_config(copy_ckpt: CopyCkpt, llama_ckpt: Path, out: Path) -> None:
    ckpt = copy_ckpt(llama_ckpt)
    (ckpt / "config.json").unlink()
    convert_fails(ckpt, out, CheckpointError, "config.json not found")


def test_malformed_config(copy_ckpt: CopyCkpt, llama_ckpt: Path, out: Path) -> None:
    ckpt = copy_ckpt(llama_ckpt)
    (ckpt / "config.json").write_text('{"architectures": ["LlamaForCausalLM"], "hidden_size": 64,')
    convert_fails(ckpt, out, CheckpointError, "config.json is not valid JSON", "line 1")


def test_config_missing_a_key(copy_ckpt: CopyCkpt, llama_ckpt: Path, out: Path) -> None:
    ckpt = copy_ckpt(llama_ckpt)
    config = json.loads((ckpt / "config.json").read_text())
    del config["num_hidden_layers"]
    (ckpt / "config.json").write_text(json.dumps(config))
    convert_fails(ckpt, out, CheckpointError, "lacks required key", "num_hidden_layers")


def test_config_with_a_bad_value(copy_ckpt: CopyCkpt, llama_ckpt: Path, out: Path) -> None:
    ckpt = copy_ckpt(llama_ckpt)
    edit_json(ckpt / "config.json", num_key_value_heads=3)
    convert_fails(ckpt, out, CheckpointError, "not a multiple of num_key_value_heads 3")


def test_unknown_architecture_lists_supported(copy_ckpt: CopyCkpt, llama_ckpt: Path, out: Path) -> None:
    ckpt = copy_ckpt(llama_ckpt)
    edit_json(ckpt / "config.json", architectures=["MistralForCausalLM"])
    convert_fails(ckpt, out, UnsupportedModelError, "MistralForCausalLM", "LlamaForCausalLM, Qwen2ForCausalLM")


def test_unsupported_option(copy_ckpt: CopyCkpt, llama_ckpt: Path, out: Path) -> None:
    ckpt = copy_ckpt(llama_ckpt)
    edit_json(ckpt / "config.json", rope_scaling={"rope_type": "yarn", "factor": 4.0})
    convert_fails(ckpt, out, UnsupportedModelError, "'yarn' rope scaling", "supported: none, llama3")


def test_missing_tensor(copy_ckpt: CopyCkpt, llama_ckpt: Path, out: Path) -> None:
    ckpt = copy_ckpt(llama_ckpt)
    rewrite_shard(ckpt / "model.safetensors", drop=("model.layers.1.mlp.up_proj.weight",))
    convert_fails(ckpt, out, CheckpointError, "'model.layers.1.mlp.up_proj.weight'", "missing")


def test_unexpected_tensor(copy_ckpt: CopyCkpt, llama_ckpt: Path, out: Path) -> None:
    ckpt = copy_ckpt(llama_ckpt)
    extra = {"model.layers.0.self_attn.q_norm.weight": np.ones(16, dtype=np.float32)}
    rewrite_shard(ckpt / "model.safetensors", add=extra)
    convert_fails(ckpt, out, CheckpointError, "unexpected tensor", "q_norm", "every tensor must be mapped")


def test_shape_contradicting_config(copy_ckpt: CopyCkpt, llama_ckpt: Path, out: Path) -> None:
    ckpt = copy_ckpt(llama_ckpt)
    edit_json(ckpt / "config.json", intermediate_size=256)
    convert_fails(ckpt, out, CheckpointError, "has shape [64, 192] but config.json implies [64, 256]")


def test_truncated_safetensors(copy_ckpt: CopyCkpt, qwen2_ckpt: Path, out: Path) -> None:
    ckpt = copy_ckpt(qwen2_ckpt)
    shard = sorted(ckpt.glob("model-*.safetensors"))[1]
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) - 1000])
    convert_fails(ckpt, out, CheckpointError, f"truncated or corrupt safetensors file {shard.name}", "download it")


def test_truncated_header(copy_ckpt: CopyCkpt, llama_ckpt: Path, out: Path) -> None:
    ckpt = copy_ckpt(llama_ckpt)
    (ckpt / "model.safetensors").write_bytes((ckpt / "model.safetensors").read_bytes()[:100])
    convert_fails(ckpt, out, CheckpointError, "truncated or corrupt safetensors file model.safetensors")


def test_tensor_in_two_shards(copy_ckpt: CopyCkpt, qwen2_ckpt: Path, out: Path) -> None:
    ckpt = copy_ckpt(qwen2_ckpt)
    first, second = sorted(ckpt.glob("model-*.safetensors"))[:2]
    rewrite_shard(second, add={"model.embed_tokens.weight": np.zeros((640, 64), dtype=np.float32)})
    convert_fails(ckpt, out, CheckpointError, "'model.embed_tokens.weight' is in two shards", first.name, second.name)


def test_index_points_to_missing_shard(copy_ckpt: CopyCkpt, qwen2_ckpt: Path, out: Path) -> None:
    ckpt = copy_ckpt(qwen2_ckpt)
    shard = sorted(ckpt.glob("model-*.safetensors"))[-1]
    shard.unlink()
    convert_fails(ckpt, out, CheckpointError, f"points to shard {shard.name}, which is missing")


def test_pickle_checkpoint_is_refused(copy_ckpt: CopyCkpt, llama_ckpt: Path, out: Path) -> None:
    ckpt = copy_ckpt(llama_ckpt)
    (ckpt / "model.safetensors").unlink()
    (ckpt / "pytorch_model.bin").write_bytes(b"PK\x03\x04 not really a pickle")
    message = convert_fails(ckpt, out, UnsafeCheckpointError, "pytorch_model.bin", "run arbitrary code")
    assert "safetensors" in message


def test_existing_output_needs_force(llama_ckpt: Path, out: Path) -> None:
    out.write_bytes(b"precious")
    convert_fails(llama_ckpt, out, OutputError, "already exists", "--force")
    assert out.read_bytes() == b"precious"
    convert(llama_ckpt, out, force=True)
    assert out.read_bytes()[:4] == b"GGUF"


def test_not_enough_disk_space(llama_ckpt: Path, out: Path) -> None:
    convert_fails(llama_ckpt, out, OutputError, "not enough disk space", "10.0 MB are free",
                  free_bytes=lambda path: 10_000_000)


def test_disk_space_check_counts_the_output(llama_ckpt: Path, out: Path) -> None:
    size = convert(llama_ckpt, out).files[0].stat().st_size
    out.unlink()
    with_margin = DISK_MARGIN + size
    convert_fails(llama_ckpt, out, OutputError, "not enough disk space", free_bytes=lambda path: with_margin - 1)
    convert(llama_ckpt, out, free_bytes=lambda path: with_margin + 2 * 2**20)


def test_interrupted_run_leaves_nothing(llama_ckpt: Path, out: Path) -> None:
    def interrupt(progress: object) -> None:
        raise KeyboardInterrupt

    convert_fails(llama_ckpt, out, KeyboardInterrupt, progress=interrupt)  # type: ignore[arg-type]


def test_missing_output_folder(llama_ckpt: Path, tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        convert(llama_ckpt, tmp_path / "nope" / "model.gguf")
