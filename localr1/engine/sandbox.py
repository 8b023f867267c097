"""A Jinja sandbox with a budget: a chat template read from a model file gets bounded time and sizes.

Jinja's sandbox stops attribute escapes but not work: nested loops run for hours and
`'A' * 4000000000` allocates gigabytes. Every loop iteration, call, attribute access,
intercepted operator and `~` join checks a per-render deadline; operators, joins, calls and
filters refuse results over a size cap before building them where the size is known in advance.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from localr1.errors import TemplateError

DEFAULT_SECONDS = 3.0
DEFAULT_MAX_CHARS = 16 << 20
_MAX_INT_BITS = 1 << 16  # a chat template has no use for numbers beyond 65,536 bits
_DIGITS = re.compile(r"\d+")
_WIDTH_FILTERS = frozenset({"center", "indent", "wordwrap", "truncate"})


@dataclass(frozen=True)
class RenderLimits:
    """How long one render may run, and how many characters any string or list in it may hold."""

    seconds: float = DEFAULT_SECONDS
    max_chars: int = DEFAULT_MAX_CHARS


class _Budget:
    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self.deadline = time.perf_counter() + limits.seconds


_budget: ContextVar[_Budget | None] = ContextVar("localr1_template_budget", default=None)


def _limits() -> RenderLimits:
    budget = _budget.get()
    return budget.limits if budget is not None else RenderLimits()


def _tick() -> None:
    budget = _budget.get()
    if budget is not None and time.perf_counter() > budget.deadline:
        raise TemplateError(
            f"the model's chat template ran for more than {budget.limits.seconds:g} s; "
            "the file's template is broken or hostile: use a model file with a working template"
        )


def _too_big(size: int) -> None:
    cap = _limits().max_chars
    if size > cap:
        raise TemplateError(
            f"the model's chat template builds a value of {size:,} characters (the limit is {cap:,}); "
            "the file's template is broken or hostile: use a model file with a working template"
        )


def _huge_number() -> TemplateError:
    return TemplateError(
        "the model's chat template computes a number too large to handle; "
        "the file's template is broken or hostile: use a model file with a working template"
    )


def _check_number(value: Any) -> None:
    """A number passed on as a count or width: no larger than the size cap."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > _MAX_INT_BITS:
            raise _huge_number()
        _too_big(abs(value))


def _check_format_string(text: str) -> None:
    """A width or precision in a %- or {}-format string is output it will allocate."""
    for digits in _DIGITS.findall(text):
        _too_big(int(digits) if len(digits) <= 18 else 10**18)


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


def _check_result(value: Any) -> Any:
    size = _size(value)
    if size is not None:
        _too_big(size)
    elif isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
        raise _huge_number()
    return value


def _ints(*values: Any) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result would be too large, before computing it."""
    left_size, right_size = _size(left), _size(right)
    if operator == "*":
        if left_size is not None and isinstance(right, int):
            _too_big(left_size * max(right, 0))
        elif right_size is not None and isinstance(left, int):
            _too_big(right_size * max(left, 0))
        elif _ints(left, right) and left.bit_length() + right.bit_length() > _MAX_INT_BITS:
            raise _huge_number()
    elif operator == "**":
        if _ints(left, right) and abs(left) > 1 and left.bit_length() * right > _MAX_INT_BITS:
            raise _huge_number()
    elif operator == "+" and left_size is not None and right_size is not None:
        _too_big(left_size + right_size)
    elif operator == "%" and isinstance(left, str):
        _check_format_string(left)


class _GuardLoopsAndJoins(NodeTransformer):
    """Route every `for` loop's iterable and every `~` join through the environment's guards."""

    def visit_For(self, node: nodes.For) -> nodes.Node:  # noqa: N802 - Jinja's visitor naming
        self.generic_visit(node)
        iterable: nodes.Expr = node.iter  # type: ignore[assignment]  # Jinja types it as Node
        node.iter = _env_call("guarded_iter", [iterable], node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:  # noqa: N802 - Jinja's visitor naming
        self.generic_visit(node)
        return _env_call("guarded_concat", list(node.nodes), node.lineno)


def _env_call(name: str, args: list[nodes.Expr], lineno: int) -> nodes.Call:
    return nodes.Call(nodes.EnvironmentAttribute(name, lineno=lineno), args, [], None, None, lineno=lineno)


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)  # keeps Jinja's pass_context / pass_eval_context marks
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        if name in _WIDTH_FILTERS:
            for value in (*args, *kwargs.values()):
                _check_number(value)
        if name == "format" and args and isinstance(args[0], str):
            _check_format_string(args[0])
        return _check_result(func(*args, **kwargs))

    return guarded


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, plus a deadline and size caps checked while a template runs."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _guard_filter(name, func) for name, func in self.filters.items()}

    def add_filter(self, name: str, func: Callable[..., Any]) -> None:
        """Register a filter with the same guards as the built-in ones."""
        self.filters[name] = _guard_filter(name, func)

    def compile_guarded(self, source: str) -> Any:
        """Parse, add the loop and join guards, and compile to a template."""
        tree = _GuardLoopsAndJoins().visit(self.parse(source))
        tree.set_environment(self)
        return self.template_class.from_code(self, self.compile(tree), self.make_globals(None), None)

    def guarded_iter(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """The items of a `for` loop, with the deadline checked at each one."""
        for item in iterable:
            _tick()
            yield item

    def guarded_concat(self, *parts: Any) -> str:
        """`a ~ b`: refused before joining when the result would be too large."""
        texts = [str(part) for part in parts]
        _too_big(sum(len(text) for text in texts))
        return "".join(texts)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        _check_binop(operator, left, right)
        return _check_result(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _tick()
        for value in (*args, *kwargs.values()):
            _check_number(value)
        return _check_result(super().call(__context, __obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _tick()
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format_string(value.__self__)
        return wrapped


def render_bounded(template: Any, limits: RenderLimits, variables: dict[str, Any]) -> str:
    """Render a compiled template within the limits; output is counted as it is produced."""
    token = _budget.set(_Budget(limits))
    try:
        size = 0
        chunks: list[str] = []
        for chunk in template.generate(**variables):
            size += len(chunk)
            _too_big(size)
            _tick()
            chunks.append(chunk)
        return "".join(chunks)
    finally:
        _budget.reset(token)
