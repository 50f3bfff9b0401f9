"""The engine never imports textual or rich: it must run headless, in workers and under torchrun."""

import subprocess
import sys


def test_importing_every_engine_module_loads_no_ui_library():
    code = (
        "import importlib, pkgutil, sys, engine\n"
        "for m in pkgutil.iter_modules(engine.__path__):\n"
        "    importlib.import_module('engine.' + m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"engine imported UI modules: {out.stdout.strip()}"
