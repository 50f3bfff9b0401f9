"""Sampling controls: a preset and the values it sets (temperature, top-k, top-p, repetition
penalty, max tokens, seed), each checked as it is typed with the engine's own rules."""

from __future__ import annotations

from dataclasses import replace

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Select, Static

from engine.generate import PRESETS, SamplingConfig

# (field, label, placeholder when blank)
FIELDS = (
    ("temperature", "temperature", "0 = greedy"),
    ("top_k", "top-k", "no limit"),
    ("top_p", "top-p", "no limit"),
    ("repetition_penalty", "rep. penalty", "1 = off"),
    ("max_new_tokens", "max tokens", "per reply"),
    ("seed", "seed", "random"),
)
_INT = {"top_k", "max_new_tokens", "seed"}
_OPTIONAL = {"top_k", "top_p", "seed"}
DEFAULT_PRESET = "chat"


def _text(value: object) -> str:
    return "" if value is None else str(value)


def parse_value(name: str, raw: str) -> int | float | None:
    """The typed value of one field; ValueError says what is wrong, in the field's words."""
    raw = raw.strip()
    if not raw:
        if name in _OPTIONAL:
            return None
        raise ValueError(f"{name} needs a value")
    try:
        value: int | float = int(raw) if name in _INT else float(raw)
    except ValueError:
        raise ValueError(f"{name} must be {'a whole number' if name in _INT else 'a number'}") from None
    if name == "top_p" and value >= 1:
        return None  # 1 keeps every token: the same as no limit
    if name == "top_k" and value == 0:
        return None
    replace(SamplingConfig(), **{name: value})  # the engine's own range checks
    return value


def matching_preset(sampling: SamplingConfig) -> str | None:
    """The preset these values are (the seed aside), if any."""
    for name, values in PRESETS.items():
        if replace(sampling, seed=None) == replace(values, seed=None):
            return name
    return None


class SamplingControls(Vertical):
    """A preset picker and one input per sampling value; `config()` gives the SamplingConfig."""

    DEFAULT_CSS = """
    SamplingControls { height: auto; }
    SamplingControls .sampling-row { height: 1; margin-bottom: 1; }
    SamplingControls .sampling-row Label { width: 13; }
    SamplingControls .sampling-row Input { width: 1fr; }
    SamplingControls .sampling-row Input.-invalid { background: $error 30%; }
    SamplingControls #sampling-error { color: $error; height: auto; }
    SamplingControls #preset { margin-bottom: 1; }
    """

    def __init__(self, sampling: SamplingConfig | None = None, preset: str = DEFAULT_PRESET, **kw) -> None:
        super().__init__(**kw)
        self._initial = sampling or PRESETS[preset]
        self._preset = preset if sampling is None else matching_preset(sampling)

    def compose(self) -> ComposeResult:
        yield Select([(name, name) for name in PRESETS], prompt="preset (custom)", value=self._preset or Select.NULL,
                     id="preset", compact=True)
        for name, label, placeholder in FIELDS:
            with Horizontal(classes="sampling-row"):
                yield Label(label)
                yield Input(_text(getattr(self._initial, name)), placeholder=placeholder, id=f"s-{name}",
                            compact=True)
        yield Static("", id="sampling-error")

    @on(Select.Changed, "#preset")
    def _preset_picked(self, event: Select.Changed) -> None:
        if event.value is Select.NULL:
            return
        self.set_values(PRESETS[str(event.value)], keep_seed=True)

    def set_values(self, sampling: SamplingConfig, keep_seed: bool = False) -> None:
        for name, _, _ in FIELDS:
            if keep_seed and name == "seed":
                continue
            self.query_one(f"#s-{name}", Input).value = _text(getattr(sampling, name))

    @on(Input.Changed)
    def _check(self, event: Input.Changed) -> None:
        problems = []
        for name, _, _ in FIELDS:
            box = self.query_one(f"#s-{name}", Input)
            try:
                parse_value(name, box.value)
                box.remove_class("-invalid")
            except ValueError as e:
                box.add_class("-invalid")
                problems.append(str(e))
        self.query_one("#sampling-error", Static).update("\n".join(problems))
        picker = self.query_one("#preset", Select)
        if picker.value is not Select.NULL and not problems:
            current = self.config()
            if matching_preset(current) != picker.value:
                picker.value = Select.NULL  # edited: no longer the preset

    def config(self) -> SamplingConfig:
        """The SamplingConfig the inputs describe; ValueError naming the first bad value."""
        values = {name: parse_value(name, self.query_one(f"#s-{name}", Input).value) for name, _, _ in FIELDS}
        return SamplingConfig(**values)
