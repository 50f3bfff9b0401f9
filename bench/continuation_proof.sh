#!/usr/bin/env bash
# The continuation demo: pretrain a base on prose about made-up people, fine-tune it for chat on
# questions about half of them, and check that it answers about the other half, whose facts it
# read only in the prose. The same chat SFT from scratch is the control: it cannot know them.
#
#   bench/continuation_proof.sh [OUT_DIR]    (default: a new temporary folder; kept, and printed)
#
# Stages: prepare (prose, SFT set, held-out set), base = pretrain on the prose, A = chat SFT from
# the base, B = the same chat SFT from scratch, then `mypt eval`: A and B on the held-out people,
# A on the SFT people. Targets (issue 13): the whole demo in at most 15 minutes on a 2-core CPU,
# A >= 60% exact match on the held-out people, B near chance. Wall times mean something only on an
# otherwise idle machine: the load is printed. Exits non-zero when a stage fails.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/.venv/bin}
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}   # this checkout's mypt, whatever the venv installed
MYPT=("$BIN/python" -m mypt_tui.cli.main)
OUT=${1:-$(mktemp -d "${TMPDIR:-/tmp}/mypt-continuation.XXXXXX")}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$OUT"   # relative paths a run writes (logs) land here, never in the checkout
echo "== output in $OUT; load before: $(uptime)"

declare -a STAGES TIMES
stage() {  # stage NAME LOG COMMAND...: run it, time it, show the log's tail if it fails
  local name=$1 log=$2 start=$SECONDS
  shift 2
  if ! "$@" >"$log.out" 2>"$log.err"; then
    echo "!! stage '$name' failed (exit status $?); the end of $log.err:" >&2
    tail -20 "$log.err" >&2
    exit 1
  fi
  STAGES+=("$name")
  TIMES+=($((SECONDS - start)))
  echo "== $name: $((SECONDS - start)) s"
}
T0=$SECONDS

D=$ROOT/data
prepare() {
  "${MYPT[@]}" prepare pretrain --input "$D/demo_continuation_corpus.txt" --tokenization char \
    --val_split 0 --output prose --overwrite
  # SFT: every question about the first half of the people; its val split is the held-out set
  # only for the loss curve (no checkpoint is chosen on it: the runs keep their last step)
  "${MYPT[@]}" prepare chat --input "$D/demo_continuation_sft.jsonl" --tokenization char \
    --val_split 0 --output sft --overwrite
  "${MYPT[@]}" prepare chat --input "$D/demo_continuation_heldout.jsonl" --tokenization char \
    --val_only --output heldout --overwrite
}
stage prepare prepare prepare
stage "pretrain base" base "${MYPT[@]}" train --init scratch --config "$ROOT/configs/demo/pretrain.toml" \
  --dataset prose --output base --overwrite --no-ui
stage "SFT A (from base)" A "${MYPT[@]}" train --model base --config "$ROOT/configs/demo/continuation.toml" \
  --dataset sft --output A --overwrite --no-ui
stage "SFT B (scratch)" B "${MYPT[@]}" train --init scratch --config "$ROOT/configs/demo/continuation.toml" \
  --dataset sft --output B --overwrite --no-ui
stage "eval held-out (A, B)" eval_heldout "${MYPT[@]}" eval --model A --model B --dataset heldout --json --failures 5
stage "eval SFT people (A)" eval_sft "${MYPT[@]}" eval --model A --dataset sft --split train --json
TOTAL=$((SECONDS - T0))
echo "== load after: $(uptime)"

"$BIN/python" - "$TOTAL" "${STAGES[@]}" -- "${TIMES[@]}" <<'PY'
import json, sys
args = sys.argv[2:]
cut = args.index("--")
stages, times = args[:cut], [int(t) for t in args[cut + 1:]]
held = json.load(open("eval_heldout.out"))["models"]
sft = json.load(open("eval_sft.out"))["models"][0]
a, b = (m["overall"] for m in held)
rows = [("A = base + chat SFT", "held-out people (prose only)", a),
        ("B = chat SFT from scratch", "held-out people (prose only)", b),
        ("A = base + chat SFT", "SFT people", sft["overall"])]
print(f"\n| model | questions about | episodes | exact match |\n|---|---|---:|---:|")
for model, about, m in rows:
    print(f"| {model} | {about} | {m['episodes']} | {m['exact_match']:.1%} |")
print("\n| stage | wall time |\n|---|---:|")
for s, t in zip(stages, times):
    print(f"| {s} | {t // 60}:{t % 60:02d} |")
total = int(sys.argv[1])
print(f"| total | {total // 60}:{total % 60:02d} |")
for t in held[0].get("failures", [])[:5]:
    print(f"  A fails {t['episode']}: gold {t['gold']!r}, reply {t['reply']!r}")
ok = a["exact_match"] >= 0.60 and total <= 15 * 60
print(f"\nA on held-out people {a['exact_match']:.1%} (target 60%), B {b['exact_match']:.1%} (chance: 1 in 8 to 12), "
      f"total {total // 60}:{total % 60:02d} (target 15:00): {'PASS' if ok else 'FAIL'}")
PY
