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
run mix --epochs 5                                   # the new default's network
# The default keeps FER-2013: the start and the fine-tune mixed in weight space
# (bundled since 2026-12-04: a = 0.75 with two views, the centre and its mirror; a = 0.65 with ten before)
[ -f "$W/wise/model/pipeline.json" ] || python benchmarks/wise_ft.py --start fer2013_vgg_fast \
    --tuned "$W/mix/model" --alphas 0.65,0.75,0.85,1 --save-alpha 0.75 --test-time-crops center \
    --out "$W/wise/model"
# Leave-one-source-out rows (the first is also stage 1 of the two stages):
run no_sfew --exclude sfew --epochs 3 --fer-max 10000
python benchmarks/sfew_two_stage.py --stage1 "$W/no_sfew/model" --work "$W/sfew_two_stage"
python benchmarks/bench_transfer.py --runs "$W" --trained mix,wise --json "$W/transfer.json"
run no_expw --exclude expw --epochs 3 --fer-max 10000
run no_muxspace --exclude muxspace --epochs 3 --fer-max 10000
run no_fer2013 --exclude fer2013 --init scratch --learning-rate 0.05 --epochs 12
# The bundled wild_ensemble: mix and the leave-one-source-out networks (no training)
[ -f "$W/wild_ensemble/pipeline.json" ] || python benchmarks/wild_ensemble.py --work "$W/ensemble" \
    --mixture "$W/mix/model" --mixture "$W/no_sfew/model" --mixture "$W/no_expw/model" \
    --mixture "$W/no_muxspace/model" --save mix+no_sfew+no_expw+no_muxspace --out "$W/wild_ensemble"
python benchmarks/bench_transfer.py --runs "$W" --models wild_vgg_fast,wild_ensemble,fer2013_ensemble \
    --trained mix --json "$W/transfer.json"
