"""Chat templates from model files are untrusted: a broken or hostile one is a one-line TemplateError."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from localr1.engine.engine import Engine
from localr1.engine.params import LoadParams
from localr1.engine.sandbox import RenderLimits
from localr1.engine.template import ChatMessage, RenderedPrompt, render
from localr1.errors import TemplateError
from tests.conftest import GREEDY
from tests.gguf_edit import STRING, rewrite_gguf

HI = [ChatMessage("user", "hi")]
NESTED_RANGES = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}ok"
NESTED_LIST = "{% set r = range(100000)|list %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}ok"
DOUBLING = (
    "{% set ns = namespace(s='A') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}"
)
RECURSION = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"
BRANCHING = "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}"


def finishes_within(seconds: float, job: Callable[[], RenderedPrompt]) -> BaseException | None:
    """Run job in a thread; fail the test if it is still running after `seconds` (a hang)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            job()
            outcome.append(None)
        except BaseException as exc:  # handed back to the test
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert outcome, f"rendering still running after {seconds} s"
    return outcome[0]


def render_plain(template: str, limits: RenderLimits | None = None) -> RenderedPrompt:
    return render(template, HI, bos_token="", eos_token="", r1_rules=False, limits=limits)


@pytest.mark.parametrize("template", [NESTED_RANGES, NESTED_LIST, BRANCHING])
def test_endless_work_stops_at_the_deadline(template: str) -> None:
    started = time.perf_counter()
    error = finishes_within(20, lambda: render_plain(template, RenderLimits(seconds=0.5)))
    assert isinstance(error, TemplateError), repr(error)
    assert "ran for more than 0.5 s" in str(error)
    assert time.perf_counter() - started < 10


def test_the_default_deadline_applies_without_limits() -> None:
    error = finishes_within(30, lambda: render_plain(NESTED_RANGES))
    assert isinstance(error, TemplateError) and "ran for more than 3 s" in str(error)


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'A' * 4000000000 }}",
        "{{ 4000000000 * 'A' }}",
        "{{ ['A'] * 4000000000 }}",
        "{{ 'x'|center(4000000000) }}",
        "{{ 'x'.ljust(4000000000) }}",
        "{{ '%4000000000s' % 'x' }}",
        "{{ '{:>4000000000}'.format(1) }}",
        "{{ '%4000000000s'|format('x') }}",
        DOUBLING,
        "{% set s = 'A' * 10000000 %}{{ s + s }}",
    ],
)
def test_huge_values_are_refused_before_they_are_built(template: str) -> None:
    error = finishes_within(20, lambda: render_plain(template))
    assert isinstance(error, TemplateError), repr(error)
    assert "characters (the limit is" in str(error)


@pytest.mark.parametrize("template", ["{{ 9 ** (9 ** 9) }}", "{% set n = 10 ** 5000 %}{{ n * n * n * n * n }}"])
def test_huge_numbers_are_refused(template: str) -> None:
    error = finishes_within(20, lambda: render_plain(template))
    assert isinstance(error, TemplateError) and "number too large" in str(error)


def test_output_is_capped_as_it_grows() -> None:
    template = "{% for i in range(100000) %}{{ 'A' * 1000 }}{% endfor %}"
    error = finishes_within(20, lambda: render_plain(template, RenderLimits(max_chars=1_000_000)))
    assert isinstance(error, TemplateError) and "the limit is 1,000,000" in str(error)


@pytest.mark.parametrize(
    ("template", "kind"),
    [
        (RECURSION, "RecursionError"),
        ("{{ messages[0]['content'] + 1 }}", "TypeError"),
        ("{{ 1 // 0 }}", "ZeroDivisionError"),
        ("{% include 'other.jinja' %}", "no loader"),
    ],
)
def test_any_failure_inside_the_template_is_a_template_error(template: str, kind: str) -> None:
    error = finishes_within(20, lambda: render_plain(template))
    assert isinstance(error, TemplateError), repr(error)
    assert kind in str(error) and "\n" not in str(error)


def test_ordinary_templates_are_unchanged() -> None:
    template = (
        "{% for m in messages %}{{ loop.index }}/{{ loop.length }} {{ m.role ~ ': ' ~ m.content }}"
        "{% if not loop.last %}|{% endif %}{% endfor %}{{ '-' * 3 }}{{ 'x'|center(5) }}{{ 2 ** 10 }}"
    )
    messages = [ChatMessage("user", "a"), ChatMessage("assistant", "b"), ChatMessage("user", "c")]
    text = render(template, messages, bos_token="", eos_token="", r1_rules=False).text
    assert text == "1/3 user: a|2/3 assistant: b|3/3 user: c---  x  1024"


def test_syntax_error_is_one_line() -> None:
    with pytest.raises(TemplateError, match=r"does not parse \(line 1") as caught:
        render_plain("{% for m in messages %}{{ m.content }")
    assert "\n" not in str(caught.value)


def gguf_with_template(demo_path: Path, tmp_path: Path, template: str) -> Path:
    return rewrite_gguf(demo_path, tmp_path / "templated.gguf", tokenizer__chat_template=(STRING, template))


@pytest.mark.model
def test_loading_a_file_with_a_broken_template_is_a_template_error(demo_path: Path, tmp_path: Path) -> None:
    path = gguf_with_template(demo_path, tmp_path, "{% for m in messages %}{{ m.content }")
    with pytest.raises(TemplateError, match="chat template does not parse"):
        Engine(path, LoadParams(context_size=256), GREEDY)


@pytest.mark.model
def test_a_hostile_template_neither_hangs_the_load_nor_the_chat(demo_path: Path, tmp_path: Path) -> None:
    """llama-cpp-python would fold the constant while compiling the template at load: 4 GB, minutes."""
    path = gguf_with_template(demo_path, tmp_path, "{{ 'A' * 4000000000 }}")
    started = time.perf_counter()
    eng = Engine(path, LoadParams(context_size=256), GREEDY)
    try:
        assert time.perf_counter() - started < 30
        with pytest.raises(TemplateError, match="4,000,000,000 characters"):
            list(eng.chat(HI))
        # llama-cpp-python's own chat path holds no compiled copy of the file's template.
        with pytest.raises(TemplateError, match="renders chat prompts itself"):
            eng._llm.create_chat_completion(messages=[{"role": "user", "content": "hi"}])
    finally:
        eng.close()
