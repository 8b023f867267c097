"""`localr1 info` and `localr1 models`: facts from GGUF headers and models.toml."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table
from rich.text import Text

from localr1.ggufinfo import GGUFInfo, read_info
from localr1.plaintext import plain
from localr1.registry import installed_path, load_registry, resolve_model


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{n} B"
        size /= 1000
    return f"{size:.1f} GB"


def _human_count(n: int) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def info_rows(info: GGUFInfo) -> list[tuple[str, str]]:
    """The facts `info` shows, as label/value pairs."""
    template = info.chat_template or ""
    return [
        ("file", str(info.path)),
        ("name", info.name),
        ("architecture", info.architecture),
        ("parameters", _human_count(info.parameters)),
        ("quant type", info.file_type),
        ("context length", str(info.context_length)),
        ("layers", str(info.block_count)),
        ("embedding", str(info.embedding_length)),
        ("heads / KV heads", f"{info.head_count} / {info.head_count_kv}"),
        ("size", _human_bytes(info.file_size)),
        ("GGUF version", str(info.version)),
        ("chat template", f"{info.template_family}, {len(template)} chars" if template else "none"),
        ("R1 rules", "yes (no system prompt, thinking stripped)" if info.is_r1 else "no"),
    ]


def info_command(model: str, as_json: bool) -> int:
    """Print what a GGUF header says about a model."""
    info = read_info(resolve_model(model).path)
    if as_json:
        payload = {
            "path": str(info.path), "name": info.name, "architecture": info.architecture,
            "parameters": info.parameters, "quant_type": info.file_type,
            "context_length": info.context_length, "layers": info.block_count,
            "embedding_length": info.embedding_length, "head_count": info.head_count,
            "head_count_kv": info.head_count_kv, "file_size": info.file_size,
            "gguf_version": info.version, "chat_template_family": info.template_family,
            "r1_rules": info.is_r1,
        }
        print(json.dumps(payload, indent=2))
        return 0
    table = Table(show_header=False, box=None)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # a long path is folded, not cut
    for label, value in info_rows(info):
        table.add_row(Text(label, style="bold"), plain(value))  # values come from the file: never markup
    Console().print(table)
    return 0


def models_command() -> int:
    """List the model family with shapes, sizes and where each installed one lives."""
    table = Table("name", "model", "arch", "layers", "Q4_K_M GB", "installed")
    for entry in load_registry().values():
        path = installed_path(entry)
        cells = (
            entry.key, entry.display_name, entry.architecture, str(entry.layers),
            f"{entry.sizes_gb['Q4_K_M']:.2f}" if "Q4_K_M" in entry.sizes_gb else "-",
            "yes" if path else "no",
        )
        table.add_row(*(plain(cell) for cell in cells))
    Console().print(table)
    return 0
