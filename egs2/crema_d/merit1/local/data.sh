#!/usr/bin/env bash
# Stage 1 for CREMA-D: Kaldi-style data dirs train, dev and test, split by actor
# (written to data/actor_split.txt).
#   local/data.sh [--classes 4|6] [--seed N] [--dev_ratio R] [--test_ratio R]
#                 [--split_file FILE] [--corpus_dir DIR]
# The corpus is ${CREMA_D} of db.sh unless --corpus_dir says otherwise, so
# --local_data_opts "--classes 6" keeps it.
# EmoBox's published split instead (espnet2_merit.recipe.emobox: its one fold's
# train and test; dev a seeded share of the train actors, data/dev_list.txt):
#   local/data.sh --emobox_dir EmoBox/data/cremad [--fold 1] [--classes 4|6]
#                 [--dev_by speaker|utterance] [--dev_ratio R] [--seed N]
#                 [--dev_list FILE] [--corpus_dir DIR]
# (or EMOBOX_CREMA_D of db.sh), e.g. ./run.sh --local_data_opts
# "--emobox_dir EmoBox/data/cremad --fold 1".
set -euo pipefail
. ./path.sh
. ./db.sh
emobox_dir=${EMOBOX_CREMA_D:-}
classes=4
args=()        # for crema_d_data.py
emobox_args=() # for merit_emobox_data, which takes --class_map for --classes
while [ $# -gt 0 ]; do
    case $1 in
        --emobox_dir|--classes)
            [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; }
            if [ "$1" = --emobox_dir ]; then
                emobox_dir=$2
            else
                classes=$2
                args+=("$1" "$2")
            fi
            shift 2 ;;
        *) args+=("$1"); emobox_args+=("$1"); shift ;;
    esac
done
if [ -z "${emobox_dir}" ]; then
    ${python} local/crema_d_data.py --corpus_dir "${CREMA_D}" --outdir data \
        ${args[@]+"${args[@]}"}
    exit 0
fi
# The codes and class order of crema_d_data.py's --classes.
case ${classes} in
    4) class_map=ANG=A,SAD=S,HAP=H,NEU=N ;;
    6) class_map=ANG=A,SAD=S,HAP=H,FEA=F,DIS=D,NEU=N ;;
    *) echo "$0: --classes ${classes}: expected 4 or 6" >&2; exit 2 ;;
esac
${python} -m espnet2_merit.bin.merit_emobox_data --emobox_dir "${emobox_dir}" \
    --corpus_dir "${CREMA_D}" --outdir data --class_map "${class_map}" \
    ${emobox_args[@]+"${emobox_args[@]}"}
