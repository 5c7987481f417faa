#!/usr/bin/env bash
# Stage 1 for IEMOCAP: the Kaldi-style data dirs train, dev, test of one
# leave-one-session-out fold (4 classes A S H N, exc merged into hap).
#   local/data.sh --fold K [--outdir DIR] [--dev_split session|speaker]
# The corpus is ${IEMOCAP} of db.sh; the output goes to data/ unless --outdir says
# otherwise. run.sh passes --local_data_opts "--fold K --outdir data/foldK" together
# with merit.sh's --datadir data/foldK (merit.sh does not pass its --datadir here).
# EmoBox's published folds instead (espnet2_merit.recipe.emobox; its fold K tests
# Session K too), same classes:
#   local/data.sh --emobox_dir EmoBox/data/iemocap --fold K [--outdir DIR]
#                 [--dev_by speaker|utterance] [--dev_ratio R] [--seed N]
#                 [--dev_list FILE] [--class_map MAP]
# or EMOBOX_IEMOCAP of db.sh, which run.sh's per-fold options then use.
set -euo pipefail
. ./path.sh
. ./db.sh
emobox_dir=${EMOBOX_IEMOCAP:-}
args=()
while [ $# -gt 0 ]; do
    if [ "$1" = --emobox_dir ]; then
        [ $# -ge 2 ] || { echo "$0: --emobox_dir needs a directory" >&2; exit 2; }
        emobox_dir=$2
        shift 2
    else
        args+=("$1")
        shift
    fi
done
if [ -n "${emobox_dir}" ]; then
    ${python} -m espnet2_merit.bin.merit_emobox_data --emobox_dir "${emobox_dir}" \
        --corpus_dir "${IEMOCAP}" --outdir data \
        --class_map ang=A,sad=S,hap=H,exc=H,neu=N ${args[@]+"${args[@]}"}
else
    ${python} local/iemocap_data.py --corpus_dir "${IEMOCAP}" --outdir data \
        ${args[@]+"${args[@]}"}
fi
