"""The Config screen: open a training config, edit it in a form, save it with its comments.

The form shows every key in the guide's groups with the guide's one-line reason; a value is
checked as it is typed (`engine.config.field_error`) and the whole config as it stands
(`validate_values`, rules between keys). Saving sends only the keys the user changed to
`engine.config.save_config_preserving`, which edits the TOML in place: comments, blank lines,
key order and the spelling of untouched values stay as they were. A MyPT `.json` opens too;
it is saved as a `.toml` beside it.
"""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Input, Select, Static

from engine.config import (
    ARCHITECTURE_KEYS,
    FIELDS,
    ConfigError,
    format_value,
    load_config,
    resolve_config_path,
    save_config_preserving,
    validate_values,
)
from mypt_tui.app.widgets.config_form import ConfigForm, FieldRow
from mypt_tui.app.widgets.nav import NAV_BINDINGS, NavBar
from mypt_tui.present.config_comments import key_comments

CONTINUING = "continuing from a checkpoint: the architecture comes from it (a different value stops the run)"


def known_configs(roots: list[Path] | None = None) -> list[Path]:
    """The configs to offer: configs/**/*.toml and *.json here and in the source tree."""
    if roots is None:
        here = Path.cwd() / "configs"
        shipped = Path(__file__).resolve().parents[2] / "configs"
        roots = [here] + ([shipped] if shipped.resolve() != here.resolve() else [])
    found: list[Path] = []
    for root in roots:
        if root.is_dir():
            found += sorted(p for p in root.rglob("*") if p.suffix in (".toml", ".json") and p.is_file())
    return found


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def texts_from_config(cfg) -> dict[str, str]:
    """The form text of every key of a loaded TrainConfig (warmup as written: a fraction stays one)."""
    out = {name: format_value(name, getattr(cfg, name)) for name in FIELDS}
    if cfg.warmup_fraction is not None:
        out["warmup_iters"] = format_value("warmup_iters", cfg.warmup_fraction)
    return out


def texts_from_raw(path: Path) -> tuple[dict[str, str], set[str]]:
    """For a config that does not validate: the raw values of its known keys, to fix in the form."""
    import json

    import tomli

    text = path.read_text(encoding="utf-8")
    raw = tomli.loads(text) if path.suffix == ".toml" else json.loads(text)
    texts = {name: format_value(name, FIELDS[name].default) for name in FIELDS}
    present = set()
    for key, value in raw.items():
        if key in FIELDS and not isinstance(value, (dict, list)):
            texts[key] = format_value(key, value)
            present.add(key)
    return texts, present


class ConfigScreen(Screen):
    """Open, edit, validate and save a training config."""

    BINDINGS = [
        *NAV_BINDINGS,
        Binding("ctrl+s", "save", "Save"),
        Binding("ctrl+o", "open", "Open"),
    ]

    DEFAULT_CSS = """
    ConfigScreen #config-open, ConfigScreen #config-save-row { height: 1; margin: 1 1 0 1; }
    ConfigScreen #config-path, ConfigScreen #config-save-as { width: 1fr; }
    ConfigScreen #config-known { width: 30; margin-left: 1; }
    ConfigScreen Button { margin-left: 1; min-width: 8; }
    ConfigScreen #config-continuing { margin: 0 1; height: 1; }
    ConfigScreen #config-status { height: auto; max-height: 4; margin: 0 1; color: $text-muted; }
    ConfigScreen #config-status.-error { color: $error; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.path: Path | None = None  # the file the form was loaded from
        self.initial: dict[str, str] = {}  # the form's text at load: only changed keys are saved
        self.present: set[str] = set()  # the keys the file sets
        self.loads = True  # the file validated when opened
        self._overwrite_ok: Path | None = None

    def compose(self) -> ComposeResult:
        yield NavBar()
        with Horizontal(id="config-open"):
            yield Input(placeholder="config file (.toml or MyPT .json)", id="config-path", compact=True)
            yield Button("Open", id="open", compact=True)
            yield Select([(_display(p), str(p)) for p in known_configs()], prompt="known configs",
                         id="config-known", compact=True)
        yield Checkbox("continuing from a checkpoint (the architecture comes from it)", id="config-continuing",
                       compact=True)
        yield ConfigForm(id="config-form")
        yield Static("Open a config, or pick one of the known configs.", id="config-status")
        with Horizontal(id="config-save-row"):
            yield Button("Save", id="save", variant="primary", compact=True)
            yield Input(placeholder="save as: new path ending in .toml", id="config-save-as", compact=True)
            yield Button("Save as", id="save-as", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.initial = {n: format_value(n, f.default) for n, f in FIELDS.items()}  # no file: edits are from these
        self.query_one(ConfigForm).set_texts(self.initial, set())

    # -- opening ------------------------------------------------------------------------------

    @on(Select.Changed, "#config-known")
    def _known_picked(self, event: Select.Changed) -> None:
        if event.value is not Select.NULL:
            self.query_one("#config-path", Input).value = _display(Path(str(event.value)))
            self.open_config(str(event.value))

    @on(Input.Submitted, "#config-path")
    @on(Button.Pressed, "#open")
    def action_open(self) -> None:
        raw = self.query_one("#config-path", Input).value.strip()
        if not raw:
            self.query_one("#config-path", Input).focus()
            return
        self.open_config(raw)

    def open_config(self, path: str | Path) -> bool:
        """Load a config into the form; False (and the reason shown) when it cannot be read."""
        p = resolve_config_path(path)
        form = self.query_one(ConfigForm)
        if p.suffix not in (".toml", ".json"):
            return self._status(f"{p}: a config file must end in .toml (mypt) or .json (MyPT)", error=True)
        if not p.is_file():
            return self._status(f"{p}: no such file", error=True)
        by_key: dict[str, str] = {}
        try:
            cfg = load_config(p)
            texts, present, loads = texts_from_config(cfg), set(cfg.explicit), True
            message = f"Opened {p}"
        except ConfigError as e:
            try:
                texts, present = texts_from_raw(p)
            except (ValueError, OSError):  # not even TOML/JSON: nothing to show in a form
                self._status(str(e), error=True)
                return False
            by_key, loads = e.by_key, False
            message = f"Opened {p}; fix these before saving:\n{e}"
        self.path, self.initial, self.present, self.loads = p, texts, present, loads
        self._overwrite_ok = None
        form.set_texts(texts, present, key_comments(p.read_text(encoding="utf-8")) if p.suffix == ".toml" else {})
        form.mark(by_key)
        if by_key:
            form.show_row(next(iter(by_key)))
        self.query_one("#config-continuing", Checkbox).value = self._looks_like_continuation(p)
        self.query_one("#config-save-as", Input).value = str(p.with_suffix(".toml")) if p.suffix == ".json" else ""
        self.sub_title = str(p)
        self._status(message, error=not loads)
        return True

    @staticmethod
    def _looks_like_continuation(path: Path) -> bool:
        """A config whose usage comment trains with `--model` continues a checkpoint (the guide's)."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            return False
        return any(line.lstrip().startswith("#") and "--model" in line for line in text.splitlines())

    # -- editing ------------------------------------------------------------------------------

    def changed(self) -> dict[str, str | None]:
        """The keys the user changed, as typed; an emptied unset-able key is None (unset)."""
        out: dict[str, str | None] = {}
        for name, text in self.query_one(ConfigForm).texts().items():
            if text != self.initial.get(name):
                out[name] = None if FIELDS[name].nullable and not text.strip() else text
        return out

    @on(FieldRow.Edited)
    def _field_edited(self, event: FieldRow.Edited) -> None:
        """Every edit leaves a true status: the problem it made (its row in view), or what is unsaved."""
        self._overwrite_ok = None
        self._warn_architecture(event.row)
        form = self.query_one(ConfigForm)
        problems = form.problems()
        if problems:
            form.mark({})
            name = event.row.field.name if event.row.field.name in problems else next(iter(problems))
            form.show_row(name)
            self._status(problems[name] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                         error=True)
            return
        try:
            validate_values(self.query_one(ConfigForm).texts())
        except ConfigError as e:
            form.mark(e.by_key)
            if e.by_key:
                form.show_row(event.row.field.name if event.row.field.name in e.by_key else next(iter(e.by_key)))
            self._status(str(e), error=True)
            return
        form.mark({})
        self._status(self.unsaved_text())

    def unsaved_text(self) -> str:
        n = len(self.changed())
        if self.path is None:
            return ("No config open: pick one above, or edit these defaults and use Save as"
                    + (f" ({n} key{'s' if n != 1 else ''} changed)" if n else ""))
        return f"{n} change{'s' if n != 1 else ''} not saved" if n else "No changes"

    @on(Checkbox.Changed, "#config-continuing")
    def _continuing_toggled(self) -> None:
        for row in self.query_one(ConfigForm).rows():
            self._warn_architecture(row)

    def _warn_architecture(self, row: FieldRow) -> None:
        name = row.field.name
        if name not in ARCHITECTURE_KEYS:
            return
        continuing = self.query_one("#config-continuing", Checkbox).value
        if continuing and row.text != self.initial.get(name, row.text):
            row.warn(CONTINUING)
        else:
            row.warn(None)

    # -- saving -------------------------------------------------------------------------------

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        if self.path is None:
            self._status("Nothing to save: open a config first (or use Save as for a new one).", error=True)
            return
        dest = self.path.with_suffix(".toml")
        if self.path.suffix == ".json" and dest.exists() and self._overwrite_ok != dest:
            self._overwrite_ok = dest
            self._status(f"{dest} exists: press Save again to replace it, or use Save as", error=True)
            return
        self.save(dest)

    @on(Input.Submitted, "#config-save-as")
    @on(Button.Pressed, "#save-as")
    def action_save_as(self) -> None:
        raw = self.query_one("#config-save-as", Input).value.strip()
        if not raw:
            self._status("Type the new file's path (ending in .toml) beside Save as.", error=True)
            self.query_one("#config-save-as", Input).focus()
            return
        dest = Path(raw)
        if dest.exists() and dest != self.path and self._overwrite_ok != dest:
            self._overwrite_ok = dest
            self._status(f"{dest} exists: press Save as again to replace it", error=True)
            return
        self.save(dest)

    def save(self, dest: Path) -> bool:
        """Write the changed keys into the source TOML's text at `dest`; problems shown, nothing written."""
        form = self.query_one(ConfigForm)
        problems = form.problems()
        if problems:
            form.mark({})
            form.show_row(next(iter(problems)))
            return self._status("Not saved: " + "; ".join(problems.values()), error=True)
        values = self.changed()
        source = self.path
        if self.path is None:  # a new file: every key that differs from its default
            values = {k: v for k, v in form.texts().items()
                      if v != format_value(k, FIELDS[k].default)}
        elif self.path.suffix == ".json" and not self.loads:
            # A MyPT JSON that did not validate cannot be the starting point: write its keys
            # as the form now holds them into a new TOML.
            texts = form.texts()
            values = {k: texts[k] for k in sorted(self.present | set(values), key=list(FIELDS).index)}
            source = None
        try:
            save_config_preserving(source, values, dest)
        except ConfigError as e:
            form.mark(e.by_key)
            if e.by_key:
                form.show_row(next(iter(e.by_key)))
            return self._status(f"Not saved: {e}", error=True)
        except OSError as e:
            return self._status(f"Not saved: {e}", error=True)
        self.notify(f"Saved {dest}", title="Config")
        self.open_config(dest)
        self._status(f"Saved {dest} (comments and key order kept)")
        return True

    def _status(self, text: str, error: bool = False) -> bool:
        status = self.query_one("#config-status", Static)
        status.update(text)
        status.set_class(error, "-error")
        return False
