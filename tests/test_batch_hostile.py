"""`localr1 batch` against hostile or unlucky input files: nothing the user owns is ever cut or overwritten."""

from __future__ import annotations

from pathlib import Path

from localr1.batch_files import parse_prompts
from tests.cli_helpers import localr1


def test_a_byte_order_mark_does_not_cost_the_first_prompt() -> None:
    prompts, problems = parse_prompts(b'\xef\xbb\xbf{"id": "a", "prompt": "Hi"}\r\n{"id": "b", "prompt": "Yo"}\r\n')
    assert problems == [] and [p.id for p in prompts] == ["a", "b"]


def test_an_unpaired_surrogate_escape_is_a_bad_line_not_a_crash_later() -> None:
    data = b'{"id": "\\ud800", "prompt": "Hi"}\n{"prompt": "x \\udfff y"}\n{"id": "ok", "prompt": "\\ud83d\\ude00"}\n'
    prompts, problems = parse_prompts(data)
    assert [p.id for p in prompts] == ["ok"] and prompts[0].messages[0].content == "\U0001f600"
    assert [p.split(":")[0] for p in problems] == ["line 1", "line 2"] and "surrogate" in problems[0]


def test_output_equal_to_the_prompts_file_is_refused_and_the_file_kept(tmp_path: Path) -> None:
    source = tmp_path / "prompts.jsonl"
    source.write_text('{"id": "a", "prompt": "What is 2+2?"}\n{"id": "b", "prompt": "Hi"}\n', encoding="utf-8")
    before = source.read_bytes()
    result = localr1("batch", str(source), "-o", str(tmp_path / "." / "prompts.jsonl"), timeout=120)
    assert result.returncode != 0 and "is the prompts file" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and source.read_bytes() == before
    link = tmp_path / "link.jsonl"
    link.hardlink_to(source)
    result = localr1("batch", str(source), "-o", str(link), timeout=120)
    assert result.returncode != 0 and "is the prompts file" in result.stderr, result.stderr


def test_a_foreign_file_without_a_final_line_end_is_never_cut(tmp_path: Path) -> None:
    source, out = tmp_path / "prompts.jsonl", tmp_path / "notes.txt"
    source.write_text('{"id": "a", "prompt": "Hi"}\n', encoding="utf-8")
    out.write_text("my notes\nthe last line I care about", encoding="utf-8")
    result = localr1("batch", str(source), "-o", str(out), timeout=120)
    assert result.returncode != 0 and "not a results file" in result.stderr, result.stderr
    assert out.read_text(encoding="utf-8") == "my notes\nthe last line I care about"
