"""A checkpoint's config.json and generation_config.json as typed values (unknown keys ignored)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from quantize.errors import CheckpointError

REQUIRED_KEYS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "vocab_size",
    "max_position_embeddings",
    "rms_norm_eps",
)


@dataclass(frozen=True)
class ModelConfig:
    """The hyperparameters the converter and the reference forward pass use."""

    architecture: str
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    max_position_embeddings: int
    rms_norm_eps: float
    rope_theta: float = 10000.0
    rope_scaling: dict[str, Any] | None = None
    head_dim_override: int | None = None
    tie_word_embeddings: bool = False
    hidden_act: str = "silu"
    attention_bias: bool = False
    mlp_bias: bool = False
    use_sliding_window: bool = False
    torch_dtype: str | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    name_or_path: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def head_dim(self) -> int:
        """Size of one attention head."""
        return self.head_dim_override or self.hidden_size // self.num_attention_heads

    @property
    def q_dim(self) -> int:
        """Rows of the query projection."""
        return self.num_attention_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Rows of the key and value projections."""
        return self.num_key_value_heads * self.head_dim

    @property
    def rope_type(self) -> str | None:
        """The rope scaling type ('llama3', 'yarn', ...) or None."""
        if not self.rope_scaling:
            return None
        kind = self.rope_scaling.get("rope_type", self.rope_scaling.get("type"))
        return str(kind).lower() if kind is not None else None

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config.json") -> ModelConfig:
        """Build from a parsed config.json; unknown keys are ignored, missing required ones fail."""
        architectures = raw.get("architectures")
        if not isinstance(architectures, list) or not architectures or not isinstance(architectures[0], str):
            raise CheckpointError(f"{source} has no 'architectures' list (is this a Hugging Face model folder?)")
        missing = [key for key in REQUIRED_KEYS if key not in raw]
        if missing:
            raise CheckpointError(f"{source} lacks required key(s): {', '.join(missing)}")
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: v for k, v in raw.items() if k in known and k not in ("architecture", "raw")}
        values["architecture"] = architectures[0]
        values.setdefault("num_key_value_heads", raw["num_attention_heads"])
        if values["num_key_value_heads"] is None:
            values["num_key_value_heads"] = raw["num_attention_heads"]
        values["head_dim_override"] = raw.get("head_dim")
        values["name_or_path"] = raw.get("_name_or_path")
        if values.get("rope_theta") is None:
            values.pop("rope_theta", None)
        config = cls(**values, raw=raw)
        config._validate(source)
        return config

    def _validate(self, source: str) -> None:
        for name in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "vocab_size", "max_position_embeddings"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise CheckpointError(f"{source}: '{name}' must be a positive integer, got {value!r}")
        if not isinstance(self.rms_norm_eps, int | float) or self.rms_norm_eps <= 0:
            raise CheckpointError(f"{source}: 'rms_norm_eps' must be a positive number, got {self.rms_norm_eps!r}")
        if not isinstance(self.rope_theta, int | float) or self.rope_theta <= 0:
            raise CheckpointError(f"{source}: 'rope_theta' must be a positive number, got {self.rope_theta!r}")
        if self.head_dim_override is None and self.hidden_size % self.num_attention_heads:
            raise CheckpointError(
                f"{source}: hidden_size {self.hidden_size} is not a multiple of "
                f"num_attention_heads {self.num_attention_heads}"
            )
        if self.num_attention_heads % self.num_key_value_heads:
            raise CheckpointError(
                f"{source}: num_attention_heads {self.num_attention_heads} is not a multiple of "
                f"num_key_value_heads {self.num_key_value_heads}"
            )
        if self.head_dim % 2:
            raise CheckpointError(f"{source}: head size {self.head_dim} is odd; rotary embeddings need it even")
        if self.rope_scaling is not None and not isinstance(self.rope_scaling, dict):
            raise CheckpointError(f"{source}: 'rope_scaling' must be an object or null")


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckpointError(
            f"{path.name} not found in {path.parent} (is this a Hugging Face model folder?)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"{path.name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "download it again"
        ) from None


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file that must hold an object; any problem is a CheckpointError naming the file."""
    value = _read_json(path)
    if not isinstance(value, dict):
        raise CheckpointError(f"{path.name} must hold a JSON object, not {type(value).__name__}")
    return value


def load_config(directory: Path) -> ModelConfig:
    """Parse config.json of a checkpoint folder."""
    return ModelConfig.from_dict(read_json_object(directory / "config.json"))


def load_generation_config(directory: Path) -> dict[str, Any]:
    """generation_config.json if present (sampling defaults, BOS/EOS ids), else an empty dict."""
    path = directory / "generation_config.json"
    return read_json_object(path) if path.exists() else {}
