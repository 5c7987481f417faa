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
# exp/foldK/merit_<tag>/RESULTS.md; once the stages reach scoring (--stop_stage 10
# or later), the folds run here are averaged per test set (UA, WA, F1-macro and the
# enhancement scores, each fold and mean ± sample std) into
# exp/RESULTS_folds_<tag>.md (espnet2_merit.bin.merit_folds).
# Cross-corpus tests (a model of each fold on another corpus's test sets, labels
# through conf/label_map_shared4.txt and that corpus's map), e.g.
#   ./run.sh --stage 9 --stop_stage 10 \
#       --cross_test_sets "../../crema_d/merit1/dump/raw/test_seen_snr5" \
#       --cross_label_map ../../crema_d/merit1/conf/label_map_shared4.txt
set -euo pipefail

. ./db.sh

train_config=conf/sparse_merit.yaml
folds="1 2 3 4 5"
if [ "${1:-}" = --folds ]; then
    folds=$2
    shift 2
fi

# What merit.sh names the folds' experiments and decode dirs by (its defaults,
# overridden as it parses "$@"), for the average over the folds at the end.
stop_stage=13 tag="" inference_tag="" enh_exp="" dynamic_mixing=false
_args=("$@")
for ((_i = 0; _i < ${#_args[@]}; _i++)); do
    _opt=${_args[_i]} _val=${_args[_i + 1]:-}
    [[ ${_opt} == --*=* ]] && { _val=${_opt#*=}; _opt=${_opt%%=*}; }
    case "${_opt//-/_}" in
        __stop_stage) stop_stage=${_val} ;;
        __tag) tag=${_val} ;;
        __train_config) train_config=${_val} ;;
        __inference_tag) inference_tag=${_val} ;;
        __enh_exp) enh_exp=${_val} ;;
        __dynamic_mixing) dynamic_mixing=${_val} ;;
    esac
done

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
        --cross_model_map conf/label_map_shared4.txt \
        "$@"
done

if [ "${stop_stage}" -ge 10 ]; then
    if [ -z "${tag}" ]; then
        tag=$(basename "${train_config}" .yaml)
        [ "${dynamic_mixing}" = true ] && tag=${tag}_dm
    fi
    if [ -z "${inference_tag}" ]; then
        inference_tag=decode
        [ -n "${enh_exp}" ] && inference_tag=decode_enh_$(basename "${enh_exp}")
    fi
    _out=exp/RESULTS_folds_${tag}.md
    [ "${inference_tag}" = decode ] || _out=exp/RESULTS_folds_${tag}_${inference_tag}.md
    _folds=()
    for fold in ${folds}; do _folds+=("fold${fold}=exp/fold${fold}/merit_${tag}"); done
    . ./path.sh
    echo "$0: folds ${folds} averaged -> ${_out}"
    ${python} -m espnet2_merit.bin.merit_folds --folds "${_folds[@]}" \
        --decode_name "${inference_tag}" --out "${_out}"
fi
