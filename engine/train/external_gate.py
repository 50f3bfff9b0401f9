"""Running MyPT's external gate: a script that rates a checkpoint and writes its verdict as JSON.

The script runs with this Python (`python SCRIPT ARGS...`) in the current folder, its arguments
with `{model_name}` (the checkpoint folder to rate), `{output_json}`, `{checkpoint}` and `{step}`
filled in; when no argument names `{output_json}`, `--output FILE` is added (MyPT's rule). Its
JSON is read back: `pass_path` (a dotted path, default "gate_passed"; absent: the exit code says)
and `metric_path` (a number). A script that fails, writes no JSON, writes JSON that is not an
object or runs past `timeout_s` (its whole process group is killed) gives a result with `ok`
false and an `error`: the run goes on, and the strategy decides what a failed gate means.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .. import jsonio

TAIL = 2000  # characters of the script's output kept in the result


def deep_get(obj: Any, path: str, default: Any = None) -> Any:
    """obj["a"]["b"] for path "a.b"; `default` when any part is missing."""
    for part in (p for p in path.split(".") if p):
        if not isinstance(obj, dict) or part not in obj:
            return default
        obj = obj[part]
    return obj


def command(gate: dict, checkpoint: Path, output_json: Path, step: int) -> list[str]:
    fill = {"{model_name}": str(checkpoint), "{checkpoint}": str(checkpoint), "{output_json}": str(output_json),
            "{step}": str(step)}
    args = []
    for a in gate["args"]:
        for k, v in fill.items():
            a = a.replace(k, v)
        args.append(a)
    if not any("{output_json}" in a for a in gate["args"]):
        args += ["--output", str(output_json)]
    return [sys.executable, gate["script"], *args]


def run_gate(gate: dict, checkpoint: Path, output_json: Path, step: int) -> dict[str, Any]:
    """Run the gate on a checkpoint folder; the result always has ran, ok, passed, metric, error, seconds."""
    output_json.parent.mkdir(parents=True, exist_ok=True)
    output_json.unlink(missing_ok=True)
    cmd = command(gate, checkpoint, output_json, step)
    t0 = time.time()
    result: dict[str, Any] = {"ran": True, "ok": False, "returncode": None, "passed": False, "metric": None,
                              "error": None, "output_json": str(output_json), "command": cmd}
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, errors="replace", start_new_session=True)
    except OSError as e:
        return {**result, "error": f"could not start {gate['script']}: {e}", "seconds": time.time() - t0}
    try:
        out, err = proc.communicate(timeout=gate["timeout_s"])
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        result["error"] = f"timed out after {gate['timeout_s']} s (the gate's processes were stopped)"
    result.update(returncode=proc.returncode, stdout_tail=(out or "")[-TAIL:], stderr_tail=(err or "")[-TAIL:],
                  seconds=time.time() - t0)
    if result["error"] is None and proc.returncode != 0:
        result["error"] = f"exit code {proc.returncode}: {(err or out or '').strip()[-300:]}"
    result["ok"] = result["error"] is None
    verdict: Any = {}
    if output_json.exists():
        try:
            verdict = jsonio.read_json_object(output_json, "gate output")
        except (OSError, ValueError) as e:
            result["error"] = result["error"] or f"unreadable gate output: {e}"
            result["ok"] = False
            verdict = {}
    result["passed"] = bool(deep_get(verdict, gate["pass_path"], result["ok"])) if result["ran"] else False
    if gate["metric_path"]:
        raw = deep_get(verdict, gate["metric_path"])
        try:
            result["metric"] = float(raw) if raw is not None and not isinstance(raw, bool) else None
        except (TypeError, ValueError):
            result["metric"] = None
    return result


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop a gate that overran: its process group (a script may have started others)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def due(gate: dict, eval_count: int, final: bool) -> bool:
    """MyPT's schedule: every run_interval_evals evals, and at the final eval if run_on_final_eval."""
    if not gate["enabled"]:
        return False
    if final:
        return gate["run_on_final_eval"]
    return eval_count % gate["run_interval_evals"] == 0
