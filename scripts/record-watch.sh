#!/usr/bin/env bash
# Records `keyrotator watch` following a demo run in a real terminal (tmux,
# 100×45), one frame each time the screen changes, into docs/ — what the
# README shows. Run through `make record` (it builds first).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/keyrotator-watch.txt}
command -v tmux >/dev/null || { echo "make record needs tmux: apt-get install tmux"; exit 1; }
work=$(mktemp -d)
session="keyrotator-record-$$"
trap 'tmux kill-session -t "$session" 2>/dev/null || true; rm -rf "$work"' EXIT

# The demo's sandbox, slowed down so a 7-day wait lasts 6 s; it writes the
# shell lines that reach it, and the execution, to $work/env.
tmux new-session -d -s "$session" -x 100 -y 45 -n demo \
  "bin/keyrotator-demo --dist bin/lambda --template infra/testdata/template.golden.json --wait-scale 1e-5 --env-file $work/env --linger 5s > $work/demo.log 2>&1; sleep 60"
tmux new-window -t "$session" -n watch \
  "until [ -f $work/env ]; do sleep 0.05; done; . $work/env; PS1='$ '; echo '$ keyrotator watch \$KEYROTATOR_EXECUTION'; bin/keyrotator watch \$KEYROTATOR_EXECUTION; echo \"(exit code \$?)\"; sleep 60"

start=$EPOCHREALTIME
last=""
: > "$work/frames"
for _ in $(seq 1 600); do
  frame=$(tmux capture-pane -p -J -S - -t "$session:watch")
  if [ "$frame" != "$last" ]; then
    printf -- '--- frame at %s s ---\n%s\n' "$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')" "$frame" >> "$work/frames"
    last=$frame
  fi
  case "$frame" in *"(exit code "*) break ;; esac
  sleep 0.2
done
{
  echo "# keyrotator watch, following \`make demo\`'s rotation (recorded by scripts/record-watch.sh with tmux capture-pane)"
  echo
  cat "$work/frames"
} > "$out"
grep -q "rotation succeeded" "$out" || { echo "the recorded run did not succeed: see $out and $work/demo.log"; cat "$work/demo.log"; exit 1; }
echo "recorded $(grep -c '^--- frame' "$out") frames to $out"
