"""Dependency direction: the CLI (and later the TUI) never import llama_cpp; the engine never imports textual."""

from __future__ import annotations

import subprocess
import sys


def modules_after_import(*modules: str) -> set[str]:
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(result.stdout.split())


def test_cli_and_commands_do_not_import_llama_cpp() -> None:
    loaded = modules_after_import("localr1.cli", "localr1.commands.run", "localr1.commands.info", "localr1.engine")
    assert "llama_cpp" not in loaded
    assert "localr1.engine.engine" not in loaded


def test_engine_and_quantize_do_not_import_textual() -> None:
    loaded = modules_after_import("localr1.engine.engine", "localr1.loader", "quantize")
    assert "llama_cpp" in loaded  # the check itself is live
    assert not {m for m in loaded if m == "textual" or m.startswith("textual.")}
