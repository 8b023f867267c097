"""`localr1 info`: facts from a GGUF header."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table
from rich.text import Text

from localr1.ggufinfo import GGUFInfo, read_info
from localr1.registry import resolve_model


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
    """Print what a GGUF header says about a model (for an installed key, the variant the planner picks)."""
    path = resolve_model(model).path
    if path.is_dir():
        from localr1.engine.params import LoadRequest
        from localr1.loader import plan_for

        path = plan_for(model, LoadRequest())[1].config.variant.path or path
    info = read_info(path)
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
        table.add_row(Text(label, style="bold"), Text(value))  # values come from the file: never markup
    Console().print(table)
    return 0
