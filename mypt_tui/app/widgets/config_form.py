"""The training-config form: every key of engine.config.FIELDS in the guide's groups, one row
per key (name, editor, and beside them the file's own comment on that key, else the guide's
one-line reason), each value checked as it is typed.

Editors hold text (a Checkbox stands for true/false, a Select for a choice) so that the
form's values go to `engine.config` exactly as a user would type them in a file or a flag.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select, Static, TabbedContent, TabPane

from engine.config import FIELDS, GROUP_TITLES, GROUPS, Field, field_error

TAB_TITLES = {"metadata": "Metadata", "architecture": "Architecture", "training": "Training",
              "loss_masking": "Loss masking", "episode_sampling": "Episode sampling"}


class FieldRow(Horizontal):
    """One key: its name, an editor, and beside them the guide's reason and any problem."""

    DEFAULT_CSS = """
    FieldRow { height: auto; margin-bottom: 1; }
    FieldRow .key { width: 28; }
    FieldRow .editor { width: 16; }
    FieldRow .editor.-invalid { background: $error 25%; }
    FieldRow .side { width: 1fr; height: auto; padding-left: 1; }
    """

    class Edited(Message):
        """The value of a field changed (typed, toggled or picked)."""

        def __init__(self, row: "FieldRow") -> None:
            super().__init__()
            self.row = row

        @property
        def control(self) -> "FieldRow":
            return self.row

    def __init__(self, field: Field) -> None:
        super().__init__(id=f"row-{field.name}")
        self.field = field
        self.problem: str | None = None
        self.warning: str | None = None
        self.comment = ""  # the file's own comment on this key, shown in place of the guide's note
        self.in_file = True

    # Row states are drawn by updating the widgets, not by toggling CSS classes on the row:
    # a class change restyles the whole row, and loading a file changes every row at once.
    # The reason, the problem and the warning share one Static (fewer widgets, faster mount).

    def compose(self) -> ComposeResult:
        f = self.field
        yield Label(f.name, classes="key", id=f"key-{f.name}").with_tooltip(f"{f.help}. The guide: {f.note}")
        editor_id = f"f-{f.name}"
        if f.kind == "bool":
            yield Checkbox("false", id=editor_id, classes="editor", compact=True)
        elif f.kind == "choice":
            yield Select([(c, c) for c in f.choices], id=editor_id, classes="editor", compact=True,
                         allow_blank=False)
        else:
            yield Input(placeholder=f"unset: {f.unset}" if f.nullable else "", id=editor_id, classes="editor",
                        compact=True)
        yield Static(self.side_text(), classes="side")

    @property
    def editor(self) -> Widget:
        return self.query_one(f"#f-{self.field.name}")

    @property
    def text(self) -> str:
        """The value as text: what parse_field / save_config_preserving are given."""
        w = self.editor
        if isinstance(w, Checkbox):
            return "true" if w.value else "false"
        if isinstance(w, Select):
            return "" if w.value is Select.NULL else str(w.value)
        return w.value

    def set_text(self, text: str) -> None:
        """Show a value without reporting it as an edit."""
        w = self.editor
        with w.prevent(Checkbox.Changed, Select.Changed, Input.Changed):
            if isinstance(w, Checkbox):
                w.value = text.strip().lower() in ("true", "1", "yes", "on")
                w.label = "true" if w.value else "false"
            elif isinstance(w, Select):
                if text in self.field.choices:
                    w.value = text
            else:
                w.value = text
        self.check()

    def check(self) -> str | None:
        """Check the value on its own (engine.config.field_error); show and return the problem."""
        problem = field_error(self.field.name, self.text)
        self.show_problem(problem)
        return problem

    def side_text(self) -> Text:
        """The file's comment (else the guide's reason), then the problem (red) and the warning
        (yellow), if any."""
        text = Text(self.comment, style="italic") if self.comment else Text(self.field.note, style="dim")
        if self.problem:
            text.append("\n" + self.problem, style="bold red")
        if self.warning:
            text.append("\n" + self.warning, style="yellow")
        return text

    def show_problem(self, problem: str | None) -> None:
        if problem == self.problem:
            return
        self.problem = problem
        self.editor.set_class(problem is not None, "-invalid")
        self.query_one(".side", Static).update(self.side_text())

    def set_comment(self, comment: str) -> None:
        if comment != self.comment:
            self.comment = comment
            self.query_one(".side", Static).update(self.side_text())

    def warn(self, warning: str | None) -> None:
        if warning == self.warning:
            return
        self.warning = warning
        self.query_one(".side", Static).update(self.side_text())

    def mark_in_file(self, in_file: bool) -> None:
        """A key the file does not set shows dimmed (its value is the default)."""
        if in_file != self.in_file:
            self.in_file = in_file
            self.query_one(".key", Label).update(Text(self.field.name, style="" if in_file else "dim"))

    @on(Checkbox.Changed)
    def _toggled(self, event: Checkbox.Changed) -> None:
        event.stop()
        event.checkbox.label = "true" if event.value else "false"
        self.check()
        self.post_message(self.Edited(self))

    @on(Select.Changed)
    @on(Input.Changed)
    def _edited(self, event: Message) -> None:
        event.stop()
        self.check()
        self.post_message(self.Edited(self))


class ConfigForm(Vertical):
    """Every key, one tab per group as the guide groups them."""

    DEFAULT_CSS = """
    ConfigForm { height: 1fr; }
    ConfigForm TabbedContent { height: 1fr; }
    ConfigForm TabPane { padding: 0 1; height: 1fr; }
    ConfigForm VerticalScroll { height: 1fr; }
    ConfigForm .group-title { text-style: bold; margin-bottom: 1; }
    """

    def compose(self) -> ComposeResult:
        with TabbedContent(id="config-tabs"):
            for group, title in GROUPS:
                with TabPane(TAB_TITLES.get(group, title), id=f"tab-{group}"):
                    with VerticalScroll():
                        yield Static(GROUP_TITLES[group], classes="group-title")
                        for f in FIELDS.values():
                            if f.group == group:
                                yield FieldRow(f)

    def row(self, name: str) -> FieldRow:
        return self.query_one(f"#row-{name}", FieldRow)

    def rows(self) -> list[FieldRow]:
        return list(self.query(FieldRow))

    def set_texts(self, texts: dict[str, str], present: set[str], comments: dict[str, str] | None = None) -> None:
        """Fill every field; keys not in `present` (not in the file) are shown dimmed; `comments`:
        the file's own comments on its keys."""
        for row in self.rows():
            row.set_text(texts.get(row.field.name, ""))
            row.mark_in_file(row.field.name in present)
            row.set_comment((comments or {}).get(row.field.name, ""))
            row.warn(None)

    def texts(self) -> dict[str, str]:
        return {row.field.name: row.text for row in self.rows()}

    def problems(self) -> dict[str, str]:
        """The fields whose values are wrong on their own."""
        out = {}
        for row in self.rows():
            problem = field_error(row.field.name, row.text)
            if problem is not None:
                out[row.field.name] = problem
        return out

    def mark(self, by_key: dict[str, str]) -> None:
        """Show problems found across keys (ConfigError.by_key) beside their fields."""
        for row in self.rows():
            own = field_error(row.field.name, row.text)
            row.show_problem(own or by_key.get(row.field.name))

    def show_group_of(self, name: str) -> None:
        self.query_one(TabbedContent).active = f"tab-{FIELDS[name].group}"

    def show_row(self, name: str) -> None:
        """Bring a key into view, its problem line (drawn below its editor) included."""
        self.show_group_of(name)
        row = self.row(name)
        self.call_after_refresh(row.scroll_visible, animate=False)
