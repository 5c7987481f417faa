#!/usr/bin/env bash
# Sparse MERIT on IEMOCAP (4 classes: ang, sad, hap + exc, neu), leave-one-session-out
# 5-fold cross-validation: one full merit.sh run per fold, fold K testing on
# Session K with its own data, dump and experiment directories
#   data/foldK  dump/foldK  exp/foldK
# (dev: the next session, K mod 5 + 1, see local/iemocap_data.py; --dev_split speaker
# in local_data_opts below holds out one actor of it instead). Noisy speech from the
# noise pools of db.sh, step 1 with WavLM frozen, step 2 joint fine-tuning, tests at
# -5/0/5/10 dB on seen and unseen noise.
#   ./run.sh --stage 1 --stop_stage 13
#   ./run.sh --folds "1 2" --stage 1 --stop_stage 1    # some folds only (first option)
# Every other option goes to merit.sh, for every fold (so not --local_data_opts,
# --datadir, --dumpdir or --expdir, which are the fold's). The folds' results are in
# exp/foldK/merit_<tag>/RESULTS.md; averaging them over the folds is not done here.
set -euo pipefail

. ./db.sh

train_config=conf/sparse_merit.yaml
folds="1 2 3 4 5"
if [ "${1:-}" = --folds ]; then
    folds=$2
    shift 2
fi

for fold in ${folds}; do
    case "${fold}" in
        1|2|3|4|5) ;;
        *) echo "$0: --folds: ${fold} is not a fold (1-5)" >&2; exit 2 ;;
    esac
    echo "$0: fold ${fold} of \"${folds}\": test Session${fold}"
    ./merit.sh \
        --local_data_opts "--fold ${fold} --outdir data/fold${fold}" \
        --datadir "data/fold${fold}" --dumpdir "dump/fold${fold}" \
        --expdir "exp/fold${fold}" \
        --noise_seen_dirs "${NOISE_SEEN_DIRS}" \
        --noise_unseen_dirs "${NOISE_UNSEEN_DIRS}" \
        --rir_seen_dirs "${RIR_SEEN_DIRS}" --rir_unseen_dirs "${RIR_UNSEEN_DIRS}" \
        --train_set train --valid_set dev --test_sets test \
        --train_snr 5 --test_snrs "-5 0 5 10" \
        --min_sec 1.0 --max_sec 20.0 \
        --step1_config same \
        --train_config "${train_config}" \
        --ngpu 1 --nj 16 --inference_nj 8 --gpu_inference true \
        "$@"
done
