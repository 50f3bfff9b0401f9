#!/usr/bin/env bash
# The demo proves learning: prepare the demo chat gold set, train the demo config from scratch,
# score the held-out split, and print the figures and the training curve.
#
#   bench/demo_proof.sh [RUN_DIR]        (default checkpoints/demo_chat; replaced if it exists)
#
# Targets (issue: "the demo proves learning"): training finishes in at most 10 minutes on a
# 2-core CPU, and the held-out split reaches >= 80% exact match and >= 95% format compliance.
# Wall-clock figures mean something only on an otherwise idle machine: the load is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
RUN=${1:-checkpoints/demo_chat}
DATA=${DATA:-data/prepared/demo_chat}

echo "== load before: $(uptime)"
"$BIN/mypt" prepare chat --input data/demo_chat.jsonl --val_file data/demo_chat_heldout.jsonl \
  --output "$DATA" --overwrite >/dev/null
"$BIN/mypt" prepare tool --input data/demo_tool.jsonl --val_file data/demo_tool_heldout.jsonl \
  --output data/prepared/demo_tool --overwrite >/dev/null   # the demo config's eval set
echo "== prepared $DATA and data/prepared/demo_tool"

start=$(date +%s)
"$BIN/mypt" train --init scratch --config configs/demo/chat.toml --dataset "$DATA" --output "$RUN" \
  --overwrite --no-ui 2>"$RUN.train.log" >/dev/null || { tail -20 "$RUN.train.log"; exit 1; }
echo "== trained in $(( $(date +%s) - start )) s wall (the whole command); load after: $(uptime)"

"$BIN/python" bench/demo_curve.py "$RUN"

"$BIN/mypt" eval --model "$RUN" --dataset "$DATA" --json --failures 10 >"$RUN.eval.json" 2>/dev/null
"$BIN/python" - "$RUN.eval.json" <<'EOF'
import json, sys
out = json.load(open(sys.argv[1]))["models"][0]
pct = lambda x: "-" if x is None else f"{x:.1%}"
print(f"\n{'family':<14} {'episodes':>8} {'turns':>6} {'exact':>7} {'format':>7} {'val loss':>8} {'tok acc':>7}")
for name, f in [*out["families"].items(), ("overall", out["overall"])]:
    print(f"{name:<14} {f['episodes']:>8} {f['turns']:>6} {pct(f['exact_match']):>7} {pct(f['format_compliance']):>7} "
          f"{f['val_loss']:>8.4f} {pct(f['token_accuracy']):>7}")
for t in out["failures"]:
    print(f"  {t['episode']} turn {t['turn']} [{t['family']}]: {t['problem']}\n    gold:  {t['gold']!r}\n    reply: {t['reply']!r}")
m = out["overall"]
ok = m["exact_match"] >= 0.80 and m["format_compliance"] >= 0.95
print(f"\nheld-out exact match {m['exact_match']:.1%} (target 80%), format {m['format_compliance']:.1%} "
      f"(target 95%): {'PASS' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
EOF
