"""The sandboxed tools: the calculator answers as the demo tool set does, and refuses the rest."""

import json
from pathlib import Path

import pytest

from engine.tools import MAX_DIGITS, ToolRegistry, calculate, default_tools

DATA = Path(__file__).resolve().parents[2] / "data"


def gold_calls():
    for name in ("demo_tool.jsonl", "demo_tool_heldout.jsonl"):
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            msgs = json.loads(line)["messages"]
            for m, nxt in zip(msgs, msgs[1:]):
                if m["role"] == "assistant_toolcall":
                    yield m["name"], m["arguments"], nxt["content"]


def test_every_calculator_result_of_the_demo_tool_sets_is_reproduced_byte_for_byte():
    tools = default_tools()
    calls = list(gold_calls())
    assert len(calls) > 1000
    assert any(" / " in args["expression"] for _, args, _ in calls)
    for name, args, want in calls:
        got = tools.call(name, args)
        assert got.ok and got.content == want, args


@pytest.mark.parametrize("expression, want", [
    ("(12 + 3) * 4", '{"result": 60}'),
    ("225 / 3", '{"result": 75}'),  # a whole-number division is an integer, as in the gold set
    ("10 / 4", '{"result": 2.5}'),
    ("7 // 2", '{"result": 3}'),
    ("-7 % 3", '{"result": 2}'),
    ("2 ** 10", '{"result": 1024}'),
    ("-(3 - 5)", '{"result": 2}'),
    ("2 ** -1", '{"result": 0.5}'),
    (" 1.5 * 4 ", '{"result": 6}'),
])
def test_calculator_results(expression, want):
    assert default_tools().call("calculator", {"expression": expression}).content == want


@pytest.mark.parametrize("expression, error", [
    ('__import__("os").system("true")', "calculator: function calls are not allowed: use numbers and + - * / // % ** only"),
    ("x + 1", "calculator: names are not allowed ('x'): use numbers only"),
    ("(1).real", "calculator: Attribute is not allowed: use numbers and + - * / // % ** only"),
    ("'a' * 3", "calculator: only numbers are allowed, not 'a'"),
    ("True + 1", "calculator: only numbers are allowed, not True"),
    ("2 ** 100000", "calculator: exponents are limited to 256 in size"),
    ("9 ** 9 ** 9", "calculator: exponents are limited to 256 in size"),
    ("10 ** 200", f"calculator: the result has more than {MAX_DIGITS} digits"),
    ("99999999999 ** 9 * 99999999999 ** 9", f"calculator: the result has more than {MAX_DIGITS} digits"),
    ("1e308 * 10", "calculator: the result is too large"),
    ("1 / 0", "calculator: division by zero"),
    ("(-8) ** 0.5", "calculator: the result is not a real number"),
    ("1 << 5", "calculator: the operator LShift is not allowed (use + - * / // % **)"),
    ("1 +", "calculator: not an arithmetic expression: '1 +'"),
    ("", "calculator: the expression is empty"),
    ("1+" * 150 + "1", "calculator: the expression is longer than 200 characters"),
])
def test_calculator_refusals_are_error_results(expression, error):
    got = default_tools().call("calculator", {"expression": expression})
    assert not got.ok
    assert json.loads(got.content) == {"error": error}


def test_bad_arguments_and_unknown_tools_give_error_results_not_exceptions():
    tools = default_tools()
    assert json.loads(tools.call("calculator", {}).content) == {
        "error": 'calculator takes "expression": missing \'expression\''}
    assert json.loads(tools.call("calculator", {"expression": "1", "x": 2}).content) == {
        "error": 'calculator takes "expression": unexpected \'x\''}
    assert json.loads(tools.call("calculator", {"expression": 12}).content) == {
        "error": 'calculator: "expression" must be a string, like "12 * (3 + 4)"'}
    assert json.loads(tools.call("calculator", ["1+1"]).content) == {
        "error": "calculator: arguments must be a JSON object"}
    assert json.loads(tools.call("search", {"q": "x"}).content) == {
        "error": "unknown tool 'search' (tools: calculator)"}
    assert json.loads(ToolRegistry().call("calculator", {"expression": "1"}).content) == {
        "error": "unknown tool 'calculator' (tools: none)"}


def test_calculate_never_evaluates_python():
    with pytest.raises(Exception) as e:
        calculate("open('/etc/passwd').read()")
    assert "not allowed" in str(e.value)
