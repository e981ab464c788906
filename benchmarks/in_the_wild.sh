#!/usr/bin/env bash
# Every in-the-wild result of benchmarks/RESULTS.md, in order; resumable
# (each step skips what is done: a finished model folder or fold file).
# Run from the repository root:  bash benchmarks/in_the_wild.sh
set -euo pipefail
W=${W:-runs/wild}
run() {  # name, then train_in_the_wild.py arguments
  local name=$1; shift
  [ -f "$W/$name/results.json" ] || python benchmarks/train_in_the_wild.py --work "$W" --name "$name" "$@"
}
run mix --epochs 12                                  # the new default's network
run no_sfew --exclude sfew --epochs 6                # leave-one-source-out rows,
python benchmarks/sfew_two_stage.py --stage1 "$W/no_sfew/model" --work "$W/sfew_two_stage"
run no_expw --exclude expw --epochs 6                #   and stage 1 of the two stages
run no_muxspace --exclude muxspace --epochs 6
run no_fer2013 --exclude fer2013 --init scratch --learning-rate 0.05 --epochs 20
python benchmarks/bench_transfer.py --runs "$W" --trained mix --json "$W/transfer.json"
