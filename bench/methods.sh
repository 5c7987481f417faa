#!/usr/bin/env bash
# Method comparison on the mini recipe: the paper's five systems (SER only on noisy
# speech, SE pre-processing = SE-only model then SER-only model, naive MTL, dense
# MERIT, sparse MERIT) plus five variants of sparse MERIT: the authors' untrained hard
# router (fusion_conf.router_grad=none), experts that read a learned weighted sum
# of the layers instead of their concatenation (fusion_conf.combine=weighted_sum, the
# cheap expert shape of bench/cost.py), a shared expert beside the routed ones
# (fusion_conf.num_shared=1), top-p routing (fusion_conf.top_p=0.6 with max_k=2:
# one expert where the router is confident, two elsewhere) and sparse MERIT trained
# with dynamic mixing (merit.sh --dynamic_mixing true: the training noise drawn anew
# every epoch, at the same 5 dB, from the same training pool), and the ICASSP 2025
# shared-SSL system with cascade unfreezing (naive MTL's shared features, WavLM's
# layers unfrozen top-down by its config's frontend_unfreeze, trained in one step of
# step1 + step2 epochs), sparse MERIT with the Interspeech 2025 challenge's
# training strategies (class-balanced batches by up-sampling, focal loss, soft
# labels from the annotators' votes), and MTL-AUG on sparse MERIT (augmentation-type
# classification and reconstruction of the un-augmented input as two more routed
# tasks), without and with the mini corpus's unlabelled pool (its Test3, labels
# withheld, trained by every task but SER), and speech + text SER by the Interspeech
# 2025 challenge system's two-run protocol (arXiv 2508.07282): a speech SER run
# (speech_only: the SER-only config in one step, WavLM fine-tuned) and a text SER run
# on the transcripts (text_only: the tiny RoBERTa fine-tuned), then a late-fusion
# head trained on their frozen backbones (speech_text: merit.sh --branch_configs
# with the two runs of the same seed, --branch_init "speech=frontend
# text=text_frontend"), each trained with the same budget (step 1 with the
# SSL frozen, then step 2) for several seeds, decoded and scored on every test SNR
# and noise set and on the reverberant test sets (the mini recipe's run.sh makes
# them: seen and unseen rooms, seen noise, 5 dB), then tabulated by
# bench/methods_table.py (the reverberant sets in a second table).
#
#   bash bench/methods.sh                    # 84 min on 2 cores (14 systems x 3 seeds)
#   bash bench/methods.sh --systems "mtl_aug mtl_aug_pool"   # a part (the table shows all runs)
#   bash bench/methods.sh --seeds "7" --step2_epochs 2   # a quick look
#
# Runs in the mini recipe's directory with its own --expdir, so the corpus (stages
# 1-5) is shared with the README's main command and prepared here if missing.
# Finished runs are skipped on a re-run (the stage script's .done markers).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

seeds="7 8 9"         # the paper's seed, and two more
step1_epochs=2        # SSL frozen, heads trained (the mini recipe: 3)
step2_epochs=6        # joint fine-tuning (the mini recipe: 10); fits the hour
parallel=2            # runs at a time, each with cores / parallel threads
expdir=exp/bench_methods
out=${repo}/bench/results/methods.md
systems=""           # a part of the systems (default: all); the table shows every
                     # system the experiment dir has
help_message="Usage: $0 [--seeds \"7 8 9\"] [--systems \"...\"] [--step1_epochs N] [--step2_epochs N] [--parallel N] [--expdir DIR] [--out FILE]"
. "${repo}/egs2/TEMPLATE/merit1/scripts/utils/parse_options.sh" || exit 1
[ $# -eq 0 ] || { echo "${help_message}" >&2; exit 2; }

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (methods.sh) $*"; }
SECONDS=0
recipe=${repo}/egs2/mini_msp_podcast/merit1
cd "${recipe}"
. ./path.sh
mkdir -p "${expdir}/logs"
cores=$(nproc)
threads=$(( cores / parallel > 0 ? cores / parallel : 1 ))
export OMP_NUM_THREADS=${threads} MKL_NUM_THREADS=${threads}

# system -> config and extra training options (the hard router is a YAML override)
declare -A config=(
    [ser_only]=conf/tuning/train_ser_only_tiny.yaml
    [se_only]=conf/tuning/train_se_only_tiny.yaml
    [naive_mtl]=conf/tuning/train_naive_mtl_tiny.yaml
    [dense_merit]=conf/tuning/train_dense_merit_tiny.yaml
    [sparse_merit]=conf/tuning/train_sparse_merit_tiny.yaml
    [sparse_hard]=conf/tuning/train_sparse_merit_tiny.yaml
    [sparse_ws]=conf/tuning/train_sparse_merit_tiny.yaml
    [sparse_dm]=conf/tuning/train_sparse_merit_tiny.yaml
    [sparse_shared]=conf/tuning/train_sparse_merit_tiny.yaml
    [sparse_topp]=conf/tuning/train_sparse_merit_tiny.yaml
    [shared_cascade]=conf/tuning/train_shared_ssl_cascade_tiny.yaml
    [sparse_bfs]=conf/tuning/train_sparse_merit_tiny.yaml
    [mtl_aug]=conf/tuning/train_mtl_aug_tiny.yaml
    [mtl_aug_pool]=conf/tuning/train_mtl_aug_tiny.yaml
    [challenge]=conf/tuning/train_challenge_8class_attr_tiny.yaml
    [speech_only]=conf/tuning/train_ser_only_tiny.yaml
    [text_only]=conf/tuning/train_text_only_tiny.yaml
    [speech_text]=conf/tuning/train_speech_text_fusion_tiny.yaml
)
declare -A extra=(
    [sparse_hard]="--fusion_conf router_grad=none"
    [sparse_ws]="--fusion_conf combine=weighted_sum"
    [sparse_shared]="--fusion_conf num_shared=1"
    [sparse_topp]="--fusion_conf top_k=null --fusion_conf top_p=0.6 --fusion_conf max_k=2"
    [sparse_bfs]="--balanced_batches up --tasks ser.loss=focal --tasks ser.loss_conf.class_weights=null --tasks ser.head_conf.soft_labels=emotion_votes"
)
# system -> extra options of the stage script (both training steps)
declare -A recipe_opts=(
    [sparse_dm]="--dynamic_mixing true"
    [mtl_aug_pool]="--unlabelled_sets test3"
)
# systems trained in one step (their schedule starts with the SSL model frozen)
# (the two-run protocol's branches: WavLM or RoBERTa fine-tuned from the start)
declare -A one_step=([shared_cascade]=1 [speech_only]=1 [text_only]=1)
all_systems="se_only ser_only naive_mtl dense_merit sparse_merit sparse_hard sparse_ws sparse_shared sparse_topp sparse_dm shared_cascade sparse_bfs mtl_aug mtl_aug_pool challenge speech_only text_only speech_text"
systems=${systems:-${all_systems}}
for system in ${systems}; do
    [[ " ${all_systems} " == *" ${system} "* ]] || { echo "unknown system ${system} (of: ${all_systems})" >&2; exit 2; }
done
if [[ " ${systems} " == *" speech_text "* ]]; then  # its branches: trained first
    for branch in speech_only text_only; do
        [[ " ${systems} " == *" ${branch} "* ]] || systems+=" ${branch}"
    done
fi

log "data (stages 1-6) in ${recipe}, experiments in ${recipe}/${expdir}"
./run.sh --stage 1 --stop_stage 6 --expdir "${expdir}" > "${expdir}/logs/data.log" 2>&1 \
    || { tail -n 30 "${expdir}/logs/data.log"; exit 1; }
# The training set with the unlabelled pool (its own stage-1 to -5 directories).
./run.sh --stage 1 --stop_stage 5 --expdir "${expdir}" --unlabelled_sets test3 \
    > "${expdir}/logs/data_semi.log" 2>&1 || { tail -n 30 "${expdir}/logs/data_semi.log"; exit 1; }

one_run() {  # one_run SYSTEM SEED: train (stages 7-8), decode and score (9-10)
    local system=$1 seed=$2 tag=$1_seed$2
    local step1=${config[${system}]} epochs=${step2_epochs} branches=()
    if [ -n "${one_step[${system}]:-}" ]; then
        step1="" epochs=$((step1_epochs + step2_epochs))
    fi
    if [ "${system}" = speech_text ]; then  # the fusion head on this seed's branches
        step1=""
        branches=(--branch_configs "speech=${expdir}/merit_speech_only_seed${seed} text=${expdir}/merit_text_only_seed${seed}"
                  --branch_init "speech=frontend text=text_frontend")
    fi
    # shellcheck disable=SC2086
    # The mini recipe's run.sh trains its own model with dynamic mixing: the systems
    # here train on stage 2's mixtures unless recipe_opts says otherwise.
    ./run.sh --stage 7 --stop_stage 10 --expdir "${expdir}" --tag "${tag}" \
        --dynamic_mixing false --dm_snr_range 5 --dm_rir_prob 0 ${recipe_opts[${system}]:-} \
        --nj 1 --inference_nj 1 --train_config "${config[${system}]}" \
        --step1_config "${step1}" ${branches[@]+"${branches[@]}"} \
        --step1_args "--freeze_param frontend.upstream --max_epoch ${step1_epochs} --seed ${seed} ${extra[${system}]:-}" \
        --train_args "--max_epoch ${epochs} --seed ${seed} ${extra[${system}]:-}" \
        > "${expdir}/logs/${tag}.log" 2>&1
}

cascade() {  # cascade SEED: the SER-only model on the SE-only model's output
    local seed=$1
    ./run.sh --stage 9 --stop_stage 10 --expdir "${expdir}" --tag "ser_only_seed${seed}" \
        --nj 1 --inference_nj 1 --train_config "${config[ser_only]}" \
        --enh_exp "${expdir}/merit_se_only_seed${seed}" \
        > "${expdir}/logs/sepre_seed${seed}.log" 2>&1
}

run_all() {  # run_all FUNCTION "ARGS" ...: at most ${parallel} at a time
    local func=$1
    shift
    for job in "$@"; do
        while [ "$(jobs -rp | wc -l)" -ge "${parallel}" ]; do wait -n || true; done
        log "${func} ${job}"
        # shellcheck disable=SC2086
        ( ${func} ${job} || touch "${expdir}/logs/FAILED.${func}.${job// /_}" ) &
    done
    wait
    if ls "${expdir}"/logs/FAILED.* > /dev/null 2>&1; then
        log "failed: $(cd "${expdir}/logs" && echo FAILED.*) (logs in ${recipe}/${expdir}/logs/)"
        exit 1
    fi
}

rm -f "${expdir}"/logs/FAILED.*
earlier=$(compgen -G "${expdir}/merit_*_seed*/decode" | wc -l || true)  # scored: skipped
[ "${earlier}" -gt 0 ] || earlier=""
jobs_list=()
for seed in ${seeds}; do
    for system in ${systems}; do
        [ "${system}" = speech_text ] || jobs_list+=("${system} ${seed}")
    done
done
run_all one_run "${jobs_list[@]}"
if [[ " ${systems} " == *" speech_text "* ]]; then  # after its branch runs
    jobs_list=()
    for seed in ${seeds}; do jobs_list+=("speech_text ${seed}"); done
    run_all one_run "${jobs_list[@]}"
fi
if [[ " ${systems} " == *" se_only "* && " ${systems} " == *" ser_only "* ]]; then
    # shellcheck disable=SC2086
    run_all cascade ${seeds}
fi

elapsed=${SECONDS}
header="## Method comparison on the mini corpus (\`bench/methods.sh\`)

- date: $(date '+%Y-%m-%d %H:%M %Z'); ${cores} CPU cores ($(uname -m)), ${parallel} runs at a time with ${threads} thread(s) each
- corpus: the mini recipe's (espeak-ng speech, 4 classes; train $(wc -l < dump/raw/train_sim/wav.scp), dev $(wc -l < dump/raw/dev_sim/wav.scp), test $(wc -l < dump/raw/test1_seen_snr-5/wav.scp) utterances per set; train/dev at 5 dB, babble held out as the unseen noise), tiny random WavLM (2 layers, width 64)
- reverberation: $(awk '$2 != "-"' dump/raw/train_sim/utt2rir 2>/dev/null | wc -l) of the train utterances convolved with a pyroomacoustics RIR (office/living/classroom rooms; the corridor held out as unseen rooms), dry SE reference; reverberant test sets: $(ls -d dump/raw/*_rir*_snr* 2>/dev/null | xargs -rn1 basename | tr '\n' ' ')
- budget per system and seed: step 1 (SSL frozen) ${step1_epochs} epochs, step 2 (joint) ${step2_epochs} epochs, batch 4, the first 4 s of train and dev utterances, new batches every epoch, no gradient clipping; model selection on the dev set's F1-macro; seeds ${seeds}
- speech + text: speech only and text only are one step of $((step1_epochs + step2_epochs)) epochs (WavLM, or the tiny random RoBERTa on the transcripts, fine-tuned; the text is the same at every SNR); speech + text trains its late-fusion head ${step2_epochs} epochs on their frozen backbones (the two-run protocol); all three classify only (no attribute task, so no CCC)
- wall time: $((elapsed / 60)) min $((elapsed % 60)) s for $(echo ${systems} | wc -w) systems x $(echo ${seeds} | wc -w) seeds${earlier:+ in this invocation, which skipped ${earlier} runs finished by an earlier one}"
"${python}" "${repo}/bench/methods_table.py" --expdir "${expdir}" \
    --seeds ${seeds} --out "${out}" --plot "${out%.md}_f1_vs_snr.png" --header "${header}"
log "wrote ${out} [elapsed=${SECONDS}s]"
