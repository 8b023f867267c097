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


@pytest.mark.parametrize("key", list(FACTS))
def test_r1_entries_name_their_gguf_files_and_checkpoint(key: str) -> None:
    entry = load_registry()[key]
    assert entry.checkpoint_repo == f"deepseek-ai/{entry.display_name}"
    assert entry.gguf and "Q4_K_M" in entry.gguf_quants()
    q4 = entry.gguf[0].files["Q4_K_M"]
    assert q4.files == (f"{entry.display_name}-Q4_K_M.gguf",)
    assert q4.size_gb == entry.sizes_gb["Q4_K_M"]
    for repo in entry.gguf:
        sizes = [repo.files[q].size_gb for q in ("Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "F16")
                 if q in repo.files]
        assert sizes == sorted(sizes), f"{repo.repo}: sizes should grow with the bits per weight"


USER_ENTRY = """
[models.my-tiny]
display_name = "My tiny model"
hf_repo = "someone/tiny"
architecture = "llama"
reasoning = false
layers = 2
hidden_size = 64
intermediate_size = 128
attention_heads = 4
kv_heads = 2
head_dim = 16
vocab_size = 1000
context_length = 2048
license = "mit"

[[models.my-tiny.gguf]]
repo = "someone/tiny-GGUF"
files.Q8_0 = { file = "tiny-Q8_0.gguf", size_gb = 0.001 }
"""


def _write_user_models(text: str) -> None:
    from localr1.registry import user_models_path

    path = user_models_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_a_user_entry_in_the_config_folder_is_added(private_home: object) -> None:
    _write_user_models(USER_ENTRY)
    registry = load_registry()
    assert "r1-qwen-7b" in registry
    tiny = registry["my-tiny"]
    assert tiny.gguf[0].files["Q8_0"].files == ("tiny-Q8_0.gguf",)
    assert tiny.origin.endswith("models.toml") and registry["r1-qwen-7b"].origin == "package"


@pytest.mark.parametrize(("old", "new", "field"), [
    ('layers = 2\n', 'layers = "two"\n', "layers"),
    ('layers = 2\n', '', "layers"),
    ('reasoning = false', 'reasoning = 0', "reasoning"),
    ('hf_repo = "someone/tiny"', 'hf_repo = "tiny"', "hf_repo"),
    ('size_gb = 0.001', 'size_gb = -1', "gguf[0].files.Q8_0.size_gb"),
    ('file = "tiny-Q8_0.gguf"', 'file = "tiny-Q8_0.bin"', "gguf[0].files.Q8_0.file"),
    ('files.Q8_0', 'files.Q9_X', "gguf[0].files.Q9_X"),
    ('repo = "someone/tiny-GGUF"', 'repo = 3', "gguf[0].repo"),
])
def test_a_malformed_entry_names_the_entry_and_the_field(private_home: object, old: str, new: str,
                                                         field: str) -> None:
    from localr1.errors import ConfigError

    assert old in USER_ENTRY
    _write_user_models(USER_ENTRY.replace(old, new, 1))
    with pytest.raises(ConfigError) as caught:
        load_registry()
    message = str(caught.value)
    assert "'my-tiny'" in message and f"'{field}'" in message and "models.toml" in message


def test_a_broken_user_file_is_a_one_line_error(private_home: object) -> None:
    from localr1.errors import ConfigError

    _write_user_models("[models.x\n")
    with pytest.raises(ConfigError, match="cannot read the model list"):
        load_registry()
