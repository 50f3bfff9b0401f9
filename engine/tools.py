"""Built-in tools a chat model may call, run in a sandbox of plain Python.

A model's `<myPT_toolcall>{"name": ..., "arguments": {...}}</myPT_toolcall>` is executed here
and the answer goes back as the `<myPT_toolresult>` JSON text. Tools never raise to the caller:
an unknown tool, bad arguments or a failing computation come back as `{"error": "..."}`, which
the model sees as the result (as it would see a real tool's error).

The calculator writes its result exactly as the demo tool gold set does (`{"result": 444}`,
a whole-number division as an integer), so a model trained on that set sees the results it
was trained on.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .errors import shown

# The calculator's bounds: inputs a person would type, results a model can read back.
MAX_EXPRESSION_CHARS = 200
MAX_NODES = 100  # numbers and operators in one expression
MAX_DIGITS = 60  # digits of any integer, given or computed
MAX_EXPONENT = 256  # |exponent| of **
TIME_LIMIT_S = 0.05  # per evaluation; the bounds above keep real expressions far below it
EXACT_FLOAT_INT = 2**53  # a float below this that holds a whole number holds it exactly


class ToolError(Exception):
    """A tool refused its arguments or failed; the message becomes the result's "error"."""


@dataclass(frozen=True)
class Tool:
    """One tool: what it is called, what it wants, and the function that answers."""

    name: str
    description: str
    parameters: Mapping[str, str]  # argument name -> what it is (all required, all strings here)
    run: Callable[..., Any]  # keyword arguments -> a JSON-able result


@dataclass(frozen=True)
class ToolResult:
    """What a call gave: `content` is the JSON text fed back to the model."""

    name: str
    content: str
    ok: bool


def result_json(value: Any) -> str:
    """`{"result": value}` as the gold sets write it (json.dumps defaults)."""
    return json.dumps({"result": value})


def error_json(message: str) -> str:
    return json.dumps({"error": message})


@dataclass
class ToolRegistry:
    """The tools a chat session may run, by name."""

    tools: dict[str, Tool] = field(default_factory=dict)

    def add(self, tool: Tool) -> None:
        self.tools[tool.name] = tool

    def names(self) -> list[str]:
        return sorted(self.tools)

    def __contains__(self, name: str) -> bool:
        return name in self.tools

    def call(self, name: str, arguments: Mapping[str, Any]) -> ToolResult:
        """Run a tool; every failure is an error result, never an exception."""
        tool = self.tools.get(name)
        if tool is None:
            known = ", ".join(self.names()) or "none"
            return ToolResult(name, error_json(f"unknown tool {shown(name)} (tools: {known})"), False)
        if not isinstance(arguments, Mapping):
            return ToolResult(name, error_json(f"{name}: arguments must be a JSON object"), False)
        missing = [p for p in tool.parameters if p not in arguments]
        extra = sorted(k for k in arguments if k not in tool.parameters)
        if missing or extra:  # a model may send thousands of arguments: the answer names a few
            want = ", ".join(f'"{p}"' for p in tool.parameters)
            names = missing or extra
            what = (f"{'missing' if missing else 'unexpected'} {', '.join(shown(m) for m in names[:3])}"
                    + (f" and {len(names) - 3} more" if len(names) > 3 else ""))
            return ToolResult(name, error_json(f"{name} takes {want}: {what}"), False)
        try:
            value = tool.run(**arguments)
        except ToolError as e:
            return ToolResult(name, error_json(f"{name}: {e}"), False)
        return ToolResult(name, result_json(value), True)


# -- the calculator ---------------------------------------------------------------------------

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
           ast.Pow: "**"}


def calculate(expression: str) -> int | float:
    """The value of an arithmetic expression: numbers, + - * / // % **, unary minus/plus and
    parentheses, nothing else (no names, calls, attributes, strings). Never eval()s: the
    expression is parsed with `ast` and walked; sizes and time are bounded. A whole-number
    result is an int (`225 / 3` -> 75), as in the demo gold set."""
    if not isinstance(expression, str):
        raise ToolError('"expression" must be a string, like "12 * (3 + 4)"')
    text = expression.strip()
    if not text:
        raise ToolError("the expression is empty")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ToolError(f"not an arithmetic expression: {expression!r}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ToolError("the expression is too deeply nested") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > 2 * MAX_NODES:  # the walk also counts operator and context nodes
        raise ToolError(f"the expression has more than {MAX_NODES} numbers and operators")
    deadline = time.perf_counter() + TIME_LIMIT_S
    try:
        value = _eval(tree.body, deadline)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except OverflowError:
        raise ToolError("the result is too large") from None
    except RecursionError:
        raise ToolError("the expression is too deeply nested") from None
    if isinstance(value, float) and value.is_integer() and abs(value) < EXACT_FLOAT_INT:
        value = int(value)  # beyond 2**53 a float's integer digits are not exact: it stays a float
    return _checked(value)


def _checked(value: int | float) -> int | float:
    if isinstance(value, complex):
        raise ToolError("the result is not a real number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("the result is too large")
    if isinstance(value, int) and _digits(value) > MAX_DIGITS:
        raise ToolError(f"the result has more than {MAX_DIGITS} digits")
    return value


def _digits(n: int) -> int:
    return len(str(abs(n))) if abs(n) < 10 ** 200 else 201


def _eval(node: ast.AST, deadline: float) -> int | float:
    if time.perf_counter() > deadline:
        raise ToolError("the expression took too long")
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ToolError(f"only numbers are allowed, not {node.value!r}")
        return _checked(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _eval(node.operand, deadline)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, deadline), _eval(node.right, deadline)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        return _checked(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.BinOp):
        raise ToolError(f"the operator {type(node.op).__name__} is not allowed (use + - * / // % **)")
    if isinstance(node, ast.Name):
        raise ToolError(f"names are not allowed ({node.id!r}): use numbers only")
    if isinstance(node, ast.Call):
        raise ToolError("function calls are not allowed: use numbers and + - * / // % ** only")
    raise ToolError(f"{type(node).__name__} is not allowed: use numbers and + - * / // % ** only")


def _check_power(base: int | float, exponent: int | float) -> None:
    """Refuse a power before computing it when its size would be out of bounds."""
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError(f"exponents are limited to {MAX_EXPONENT} in size")
    if base in (0, 1, -1) or exponent <= 0:
        return
    if math.log10(abs(base)) * exponent > MAX_DIGITS + 1:
        raise ToolError(f"the result has more than {MAX_DIGITS} digits")


CALCULATOR = Tool(
    name="calculator",
    description="Arithmetic on numbers: + - * / // % ** and parentheses",
    parameters={"expression": 'the expression, e.g. "(12 + 3) * 4"'},
    run=lambda expression: calculate(expression),
)


def default_tools() -> ToolRegistry:
    """The built-in tools (the demo tool set's calculator)."""
    registry = ToolRegistry()
    registry.add(CALCULATOR)
    return registry
