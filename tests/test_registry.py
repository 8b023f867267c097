"""models.toml: the demo and the six R1 distills, with the facts the planner will rely on."""

from __future__ import annotations

import pytest

from localr1.errors import ModelNotFoundError
from localr1.registry import load_registry, resolve_model

# layers, hidden, ffn, heads, kv heads, vocab (public configs, shared DESIGN.md)
FACTS = {
    "r1-qwen-1.5b": ("qwen2", 28, 1536, 8960, 12, 2, 151936),
    "r1-qwen-7b": ("qwen2", 28, 3584, 18944, 28, 4, 152064),
    "r1-llama-8b": ("llama", 32, 4096, 14336, 32, 8, 128256),
    "r1-qwen-14b": ("qwen2", 48, 5120, 13824, 40, 8, 152064),
    "r1-qwen-32b": ("qwen2", 64, 5120, 27648, 40, 8, 152064),
    "r1-llama-70b": ("llama", 80, 8192, 28672, 64, 8, 128256),
}


@pytest.mark.parametrize("key", list(FACTS))
def test_r1_entries(key: str) -> None:
    entry = load_registry()[key]
    arch, layers, hidden, ffn, heads, kv, vocab = FACTS[key]
    assert (entry.architecture, entry.layers, entry.hidden_size, entry.intermediate_size) == (arch, layers, hidden, ffn)
    assert (entry.attention_heads, entry.kv_heads, entry.vocab_size) == (heads, kv, vocab)
    assert entry.head_dim == 128 and entry.context_length == 131072 and entry.reasoning
    assert entry.hf_repo == f"deepseek-ai/{entry.display_name}"
    assert entry.sampling.temperature == 0.6 and entry.sampling.top_p == 0.95
    assert entry.license and entry.sizes_gb["Q4_K_M"] < entry.sizes_gb["Q8_0"] < entry.sizes_gb["F16"]
    if arch == "llama":
        assert entry.rope_scaling == {"type": "llama3", "factor": 8.0}


def test_demo_resolves_to_the_packaged_file() -> None:
    resolved = resolve_model("demo")
    assert resolved.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and resolved.path.exists()
    assert resolved.entry is not None and not resolved.entry.reasoning


def test_unknown_name_lists_known_models() -> None:
    with pytest.raises(ModelNotFoundError, match="r1-qwen-7b"):
        resolve_model("gpt-5")


def test_installed_model_is_found_in_the_models_folder(private_home: object) -> None:
    """A key resolves to its folder of variants: the planner chooses among them (tests/test_install.py)."""
    from localr1.paths import models_dir

    folder = models_dir() / "r1-qwen-1.5b"
    folder.mkdir(parents=True)
    (folder / "model-Q4_K_M.gguf").write_bytes(b"GGUF")
    assert resolve_model("r1-qwen-1.5b").path == folder
    (models_dir() / "my-model").mkdir()
    (models_dir() / "my-model" / "my-model-Q8_0.gguf").write_bytes(b"GGUF")
    resolved = resolve_model("my-model")  # a key of its own, installed by `localr1 quantize`
    assert resolved.path == models_dir() / "my-model" and resolved.entry is None
