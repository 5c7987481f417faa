#!/usr/bin/env bash
# The generic MERIT stage script (like ESPnet's asr.sh / enh.sh): from a corpus to
# scored, packed joint speech-enhancement + emotion-recognition models.
# A recipe's run.sh sets the options and calls this script; it needs only
# `pip install -e .` of espnet2_merit (no ESPnet checkout, no Kaldi).
#
# Every stage prints what it does and is idempotent: finished work is marked with a
# `.done` file holding a fingerprint of the options and inputs it was made from
# (scripts/utils/done_marker.sh), and outputs are written to `X.tmp` and renamed. A
# re-run with the same options skips the work, a changed option or input redoes it
# (training resumes from its checkpoint), and a crash never leaves half-written
# outputs that a re-run trusts.
#
# The contract of a recipe's local/data.sh (stage 1): it writes one Kaldi-style
# directory per set under data/ (${train_set}, ${valid_set}, each of ${test_sets}),
# each with
#   wav.scp       "<utt> <audio file>", the speech (required): clean speech when
#                 stage 2 mixes noise in, the noisy input with --simulate_noise false
#   spk1.scp      the clean reference of wav.scp (required with
#                 --simulate_noise false when a task enhances; written by stage 2)
#   emotion       "<utt> <class>" (the emotion classes; optional for a test set
#                 without labels, whose emotion is then decoded but not scored)
#   emotion_attr  "<utt> <arousal> <valence> <dominance>" (optional)
#   emotion_votes "<utt> <class>:<count> ..." annotators' votes (optional; the
#                 soft labels of head_conf.soft_labels)
#                 In emotion and emotion_attr, "-" marks an utterance without
#                 them (an unlabelled pool: it trains the other tasks only).
#   utt2spk, utt2gender (optional), and data/emotion_list, one class per line, the
#   output order of the classifier (required when a task classifies emotions).
# Every other data name of espnet2_merit.utils.datadir.DATA_FILES present in a set is
# passed to training too; a task uses what its head declares.

set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
min() { local a=$1; for b in "$@"; do [ "$b" -lt "$a" ] && a=$b; done; echo "$a"; }
SECONDS=0

# General
stage=1
stop_stage=13
skip_stages=""       # e.g. "11 13"
nj=4                 # parallel jobs for data preparation, statistics, scoring
                     # (and the CPUs of the one job of stages 1-5 and 10)
inference_nj=4       # parallel inference jobs
ngpu=0               # GPUs for training (0: CPU)
num_nodes=1          # nodes for training (ESPnet's multi-node launcher)
gpu_inference=false
dumpdir=dump
expdir=exp
datadir=data

# Stage 1: corpus preparation (the recipe's local/data.sh)
local_data_opts=""

# Stage 2: noise simulation
noise_seen_dirs=""     # noise directories split into train/dev/test pools ("seen")
noise_unseen_dirs=""   # noise directories used only for the "unseen" test set
noise_dev_ratio=0.1
noise_test_ratio=0.2
train_snr=5            # dB for train/dev: a number, or a range "lo:hi" (uniform)
test_snrs="-5 0 5 10"  # dB, one test set per SNR and noise set
noise_sets="seen unseen"
sim_seed=0
simulate_noise=true    # false: the corpus has noisy/clean pairs already (skip stage 2)
# Stage 2: reverberation, before the noise (none while rir_seen_dirs is empty)
rir_seen_dirs=""       # RIR directories (one room type each) split into train/dev/test pools
rir_unseen_dirs=""     # RIR directories (room types) used only for the "unseen rooms" tests
rir_dev_ratio=0.1
rir_test_ratio=0.2
rir_prob=0.5           # probability that a train/dev utterance is reverberant
rir_reference=dry      # SE reference of reverberant speech: dry (dereverberation +
                       # denoising) or early (direct path + rir_early_ms: denoising +
                       # late-reverberation removal)
rir_early_ms=50
rir_sets="seen unseen" # rooms of the reverberant test sets (RIR pools test_<set>)
rir_noise_sets="seen unseen"  # noise sets of the reverberant test sets
rir_test_snrs="-5 0 5 10"     # dB, one reverberant test set per SNR, noise and rooms

# Stages 3-4: formatting and filtering
fs=16000
min_sec=1.0
max_sec=20.0
# Stage 3: transcripts ("text", for a text frontend) of the formatted noisy speech
# by a transformers ASR model (espnet2_merit.bin.merit_asr)
asr_model=""           # hub name or folder (Whisper, wav2vec2 CTC, ...); empty: no ASR
asr_conf=""            # its options, "key=value" words: device=cuda language=en
                       # batch_size=8 max_new_tokens=128 local_files_only=true
asr_sets=missing       # missing: only the sets without a text; all: every set, its
                       # reference kept as text.ref and the WER in asr_wer.json
                       # (the effect of the noise on the text branch)

# Data sets (names of stage-1 data dirs)
train_set=train
valid_set=dev
test_sets="test1"
clean_test_sets=""     # test sets decoded as they are, without added noise (e.g.
                       # MSP-Podcast's test3, whose labels are withheld)
unlabelled_sets=""     # stage-1 sets whose utterances also train, without emotion
                       # labels (semi-supervised): stage 1 combines them with
                       # ${train_set} into ${train_set}_semi, their labels "-"

# Stages 6-8: training
step1_config=""        # step 1 (SSL frozen); empty: no step 1; "same": --train_config
step1_args="--freeze_param frontend.upstream"
train_config=""        # step 2 (joint fine-tuning)
step2_init="heads"     # parts of the step-1 model that step 2 starts from: "heads"
                       # (the authors' release: the MoE fusion starts afresh),
                       # "heads fusion" (the fusion too), "all" (every parameter)
train_args=""
# Stages 7-8: the two-run protocol (Interspeech 2025 challenge system, arXiv
# 2508.07282): branch models fine-tuned separately on the task (stage 7, each into
# ${expdir}/merit_${tag}_<name>), then --train_config (the fused model) starts from
# their best checkpoints' parts (stage 8), e.g.
#   --branch_configs "speech=conf/tuning/train_ser_only_tiny.yaml text=conf/tuning/train_text_only_tiny.yaml"
#   --branch_init "speech=frontend text=text_frontend"
# and its config freezes them (freeze_param: [frontend, fusion, text_frontend]).
branch_configs=""      # "name=config ..." branch runs; empty: none. "name=DIR", an
                       # experiment dir (its config.yaml): a run finished earlier,
                       # not trained again (e.g. another --tag's exp/merit_<tag>)
branch_args=""         # extra merit_train options of every branch run
branch_init=""         # "name=part,part ...": parameter prefixes (frontend, fusion,
                       # text_frontend, heads.<task>, ...) stage 8 takes from each
                       # branch's best checkpoint (--init_param <ckpt>:<part>:<part>)
tag=""                 # experiment name (default: from the config name, + _dm
                       # with --dynamic_mixing true)
dynamic_mixing=false   # true: training mixes noise into the clean speech on the fly
                       # (per seed, epoch, utterance) instead of reading the stage-2
                       # training mixtures; dev and test stay stage 2's
dm_snr_range=""        # "lo:hi" dB (or one number) of the dynamic mixtures;
                       # default: --train_snr
dm_rir_prob=0          # probability of reverberating an utterance (RIR pool:
                       # ${datadir}/rir/train.scp, which must exist when > 0)
dm_rir_reference=dry   # SE target of a reverberated utterance: dry or early
stats_dir=""           # default: ${expdir}/stats

# Stage 9: inference
inference_args=""
inference_model=""     # checkpoint; default: the first best_model_criterion of the
                       # config, e.g. valid.f1_macro.best.pth
enh_exp=""             # SE-only experiment: its enhanced output feeds this model
                       # (the SE pre-processing baseline)
inference_tag=""       # decode dir name under the experiment; default: decode, or
                       # decode_enh_<enh_exp name> with --enh_exp
# Stages 9-10: cross-corpus evaluation (espnet2_merit.scoring.cross_corpus)
cross_test_sets=""     # another corpus's test data dirs, e.g.
                       # ../../crema_d/merit1/dump/raw/test_seen_snr5, decoded as
                       # ${inference_tag}/cross_<corpus>_<dir name>
cross_label_map=""     # their corpus's label map: "<class> <shared class>" lines
                       # (e.g. ../../crema_d/merit1/conf/label_map_shared4.txt)
cross_model_map=""     # the label map of this model's classes (empty: the model's
                       # classes are the shared classes)
cross_corpus=""        # the other corpus's name; default: the directory under
                       # egs2/ that the first of --cross_test_sets is in

# Stage 10: scoring
results_note=""       # markdown file shown at the top of RESULTS.md (what the
                      # recipe's results can and cannot show)
submission_format=""   # a challenge format (msp_podcast): submission files for
                       # the tasks of sets without references
score_metrics=""       # registered metrics to score (merit_score --metrics);
                       # empty: the default ones; "default" names them, e.g.
                       # "default icbhi_se icbhi_sp icbhi_score" (ICBHI 2017)

# Stage 11: comparison, "name=exp_dir" words; the first reference is this experiment
compare_systems=""
compare_reference=""

# Stages 12-13: packing and upload
packed_model=""        # default: ${exp}/packed/model.zip
hf_repo=""             # Hugging Face repo "owner/name"; empty: skip the upload
hf_dry_run=false       # prepare the upload directory but do not push

help_message=$(cat << EOF
Usage: $0 --train_config <config> [options]

Stages: 1 data preparation, 2 noise simulation, 3 audio formatting, 4 duration
filtering, 5 label lists, 6 statistics, 7 step-1 training, 8 step-2 training,
9 inference, 10 scoring, 11 comparison, 12 packing, 13 upload.

Options (default in brackets):
  --stage / --stop_stage    Stages to run [${stage} / ${stop_stage}]
  --skip_stages             Stages to skip in the range ["${skip_stages}"]
  --nj / --inference_nj     Parallel jobs [${nj} / ${inference_nj}]
  --ngpu / --num_nodes      Training GPUs per node / nodes [${ngpu} / ${num_nodes}]
  --gpu_inference           Inference on GPU [${gpu_inference}]
  --local_data_opts         Options of local/data.sh ["${local_data_opts}"]
  --noise_seen_dirs         Noise dirs split into train/dev/test pools ["${noise_seen_dirs}"]
  --noise_unseen_dirs       Noise dirs for the unseen test set only ["${noise_unseen_dirs}"]
  --train_snr               Train/dev SNR in dB, or "lo:hi" [${train_snr}]
  --test_snrs               Test SNRs in dB ["${test_snrs}"]
  --noise_sets              Test noise sets ["${noise_sets}"]
  --simulate_noise          Mix noise in stage 2; false: data.sh gave noisy/clean pairs [${simulate_noise}]
  --rir_seen_dirs           RIR dirs (room types) split into train/dev/test pools; empty: no reverberation ["${rir_seen_dirs}"]
  --rir_unseen_dirs         RIR dirs for the unseen-rooms test sets only ["${rir_unseen_dirs}"]
  --rir_prob                Share of reverberant train/dev utterances [${rir_prob}]
  --rir_reference           SE reference of reverberant speech: dry or early [${rir_reference}]
  --rir_early_ms            Early part of the RIR kept by --rir_reference early [${rir_early_ms}]
  --rir_sets / --rir_noise_sets / --rir_test_snrs   Reverberant test sets: rooms, noise sets, SNRs
                            ["${rir_sets}" / "${rir_noise_sets}" / "${rir_test_snrs}"]
  --fs / --min_sec / --max_sec   Sampling rate, training durations [${fs} / ${min_sec} / ${max_sec}]
  --asr_model               ASR model transcribing the noisy speech in stage 3; empty: none ["${asr_model}"]
  --asr_conf / --asr_sets   Its "key=value ..." options / sets: missing (no text) or all ["${asr_conf}" / ${asr_sets}]
  --train_set / --valid_set / --test_sets   Data sets [${train_set} / ${valid_set} / "${test_sets}"]
  --clean_test_sets         Test sets decoded without added noise ["${clean_test_sets}"]
  --unlabelled_sets         Sets that also train, without emotion labels ["${unlabelled_sets}"]
  --results_note            Markdown file shown at the top of RESULTS.md ["${results_note}"]
  --submission_format       Submission files for sets without labels (msp_podcast) ["${submission_format}"]
  --score_metrics           Metrics to score, "default" + extra ones; empty: default ["${score_metrics}"]
  --step1_config / --step1_args   Step 1 (SSL frozen) ["${step1_config}" / "${step1_args}"]
  --train_config / --train_args   Step 2 (joint) ["${train_config}" / "${train_args}"]
  --step2_init              Parts of the step-1 model step 2 starts from ["${step2_init}"]
  --branch_configs          Two-run protocol: "name=config ..." runs trained separately in stage 7 (or name=exp_dir: a finished run) ["${branch_configs}"]
  --branch_args             Extra merit_train options of every branch run ["${branch_args}"]
  --branch_init             "name=part,part ...": parts stage 8 takes from each branch run ["${branch_init}"]
  --tag                     Experiment name ["${tag}"]
  --dynamic_mixing          Mix noise (and RIRs) in the training data loader [${dynamic_mixing}]
  --dm_snr_range            Its SNR range "lo:hi" dB [--train_snr]
  --dm_rir_prob / --dm_rir_reference   Its reverberation [${dm_rir_prob} / ${dm_rir_reference}]
  --inference_model         Checkpoint to decode with [first best_model_criterion]
  --inference_args          Options of merit_inference ["${inference_args}"]
  --enh_exp                 SE-only experiment whose output this model classifies ["${enh_exp}"]
  --inference_tag           Decode dir name [decode; decode_enh_<name> with --enh_exp]
  --cross_test_sets         Another corpus's test data dirs, scored through label maps ["${cross_test_sets}"]
  --cross_label_map / --cross_model_map   Their label map / this model's ["${cross_label_map}" / "${cross_model_map}"]
  --cross_corpus            Their corpus name [the egs2/<corpus> of the first dir]
  --compare_systems         "name=exp_dir ..." systems to compare ["${compare_systems}"]
  --compare_reference       Reference system names ["${compare_reference}"]
  --packed_model            Zip to write [${packed_model:-<exp>/packed/model.zip}]
  --hf_repo / --hf_dry_run  Hugging Face upload ["${hf_repo}" / ${hf_dry_run}]
EOF
)

log "$0 $*"
run_args=$(printf '%q ' "$0" "$@")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "${here}/scripts/utils/parse_options.sh" || exit 1
. "${here}/scripts/utils/done_marker.sh"
if [ $# -ne 0 ]; then
    log "${help_message}"
    log "error: unexpected arguments: $*"
    exit 2
fi

. ./path.sh
. ./cmd.sh

[ -z "${train_config}" ] && { log "error: --train_config is required"; exit 2; }
[ -f "${train_config}" ] || { log "error: --train_config ${train_config}: no such file"; exit 2; }
[ "${step1_config}" = same ] && step1_config=${train_config}
if [ -n "${step1_config}" ] && [ ! -f "${step1_config}" ]; then
    log "error: --step1_config ${step1_config}: no such file"; exit 2
fi

if [ -z "${inference_model}" ]; then
    inference_model=$(${python} -c '
import sys, yaml
conf = yaml.safe_load(open(sys.argv[1])) or {}
phase, key, _ = (conf.get("best_model_criterion") or [["valid", "loss", "min"]])[0]
print(f"{phase}.{key}.best.pth")' "${train_config}")
fi

run_stage() {  # run_stage N: is stage N selected?
    [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ] && [[ " ${skip_stages} " != *" $1 "* ]]
}

# Stages 1-5 and 10 run their work as one job of ${train_cmd} (on Slurm, one job on
# a CPU node with ${nj} CPUs; locally, on this machine): the stage adds its commands
# in order to a job script beside the log (LOG with .sh for .log) and runs it. The
# log traces every command; the first failure ends the job and fails the stage,
# naming the log. Done-markers are written inside the job, after the outputs.
job_begin() {  # job_begin LOG: start an empty job script
    _job_log=$1
    _job_script=${1%.log}.sh
    _job_cmds=0
    mkdir -p "$(dirname "${_job_script}")"
    printf '%s\n' '#!/usr/bin/env bash' 'set -euo pipefail' \
        ". $(printf '%q' "${here}/scripts/utils/done_marker.sh")" 'set -x' \
        > "${_job_script}"
}
job_add() {  # job_add COMMAND [ARG...]: append one command to the job, quoted
    { printf '%q ' "$@"; echo; } >> "${_job_script}"
    _job_cmds=$((_job_cmds + 1))
}
job_run() {  # job_run: run the job script as one job (none when it is empty)
    [ "${_job_cmds}" -gt 0 ] || return 0
    log "one job (${_job_cmds} commands), log: ${_job_log}"
    ${train_cmd} --num_threads "${nj}" "${_job_log}" bash "${_job_script}"
}
prep_logdir=${dumpdir}/log  # the logs (and job scripts) of stages 1-5

# Names derived from the options
# Semi-supervised: the training set and the unlabelled pools as one set (stage 1).
labelled_set=${train_set}
[ -z "${unlabelled_sets}" ] || train_set=${train_set}_semi
if [ -z "${tag}" ]; then
    tag=$(basename "${train_config}" .yaml)
    [ "${dynamic_mixing}" = true ] && tag=${tag}_dm
fi
# Dynamic mixing: training reads the clean speech and these options (the stage-2
# noise pool of training, and the RIR pool when there is one).
dm_opts=""
dm_inputs=()
if [ "${dynamic_mixing}" = true ]; then
    _range=${dm_snr_range:-${train_snr}}
    [[ ${_range} == *:* ]] || _range=${_range}:${_range}
    dm_opts="--dynamic_mixing noise_scp=${datadir}/noise/train.scp"
    dm_opts+=" --dynamic_mixing snr_range=[${_range%%:*},${_range##*:}]"
    dm_opts+=" --dynamic_mixing rir_prob=${dm_rir_prob}"
    dm_opts+=" --dynamic_mixing rir_reference=${dm_rir_reference}"
    dm_inputs=("${datadir}/noise/train.scp")
    # stage 2 writes the RIR pool when there are RIR dirs (it may not exist yet)
    if [ -n "${rir_seen_dirs}" ] || [ -f "${datadir}/rir/train.scp" ]; then
        dm_opts+=" --dynamic_mixing rir_scp=${datadir}/rir/train.scp"
        dm_inputs+=("${datadir}/rir/train.scp")
    fi
elif [ "${dynamic_mixing}" != false ]; then
    log "error: --dynamic_mixing must be true or false, not ${dynamic_mixing}"; exit 2
fi
exp=${expdir}/merit_${tag}
step1_exp=${expdir}/merit_${tag}_step1
stats_dir=${stats_dir:-${expdir}/stats}
packed_model=${packed_model:-${exp}/packed/model.zip}
if [ -z "${inference_tag}" ]; then
    inference_tag=decode
    [ -n "${enh_exp}" ] && inference_tag=decode_enh_$(basename "${enh_exp}")
fi
decode_dir=${exp}/${inference_tag}
# Scoring writes RESULTS.md (and images/) next to the default decode dir, and into
# any other decode dir itself, so that decoding the SE pre-processing cascade does not
# overwrite the model's own results.
results_md=${exp}/RESULTS.md
[ "${inference_tag}" = decode ] || results_md=${decode_dir}/RESULTS.md
test_sim=()
# Reverberant test sets: <test>_rir<rooms>_<noise>_snr<snr> (the scoring groups them
# by rooms); the unseen rooms need their own RIR directories.
_rir_sets=""
if [ -n "${rir_seen_dirs}" ] && [ "${simulate_noise}" = true ]; then
    for room in ${rir_sets}; do
        if [ "${room}" = unseen ] && [ -z "${rir_unseen_dirs}" ]; then
            log "no --rir_unseen_dirs: no unseen-rooms test sets"
            continue
        fi
        _rir_sets+=" ${room}"
    done
fi
if [ "${simulate_noise}" = true ]; then
    train_sim=${train_set}_sim
    valid_sim=${valid_set}_sim
    for dset in ${test_sets}; do
        for noise in ${noise_sets}; do
            for snr in ${test_snrs}; do
                test_sim+=("${dset}_${noise}_snr${snr}")
            done
        done
        for room in ${_rir_sets}; do
            for noise in ${rir_noise_sets}; do
                for snr in ${rir_test_snrs}; do
                    test_sim+=("${dset}_rir${room}_${noise}_snr${snr}")
                done
            done
        done
    done
else  # the corpus's own noisy/clean pairs
    train_sim=${train_set}
    valid_sim=${valid_set}
    for dset in ${test_sets}; do test_sim+=("${dset}"); done
fi
for dset in ${clean_test_sets}; do test_sim+=("${dset}"); done
# Cross-corpus sets: decoded (stage 9) as cross_<corpus>_<dir name>, scored through
# the label maps (stage 10); cross_dir holds each one's data dir.
cross_sim=()
declare -A cross_dir=()
if [ -n "${cross_test_sets}" ]; then
    [ -n "${cross_label_map}" ] || { log "error: --cross_test_sets needs --cross_label_map (the test corpus's label map)"; exit 2; }
    for _f in ${cross_label_map} ${cross_model_map}; do
        [ -f "${_f}" ] || { log "error: --cross_label_map/--cross_model_map: no such file ${_f}"; exit 2; }
    done
    if [ -z "${cross_corpus}" ]; then
        _abs=$(realpath -m "${cross_test_sets%% *}")
        [[ ${_abs} == */egs2/*/* ]] || { log "error: ${cross_test_sets%% *} is not under egs2/<corpus>/: give --cross_corpus"; exit 2; }
        cross_corpus=${_abs#*/egs2/}
        cross_corpus=${cross_corpus%%/*}
    fi
    for _d in ${cross_test_sets}; do
        _name=cross_${cross_corpus}_$(basename "${_d}")
        [ -z "${cross_dir[${_name}]:-}" ] || { log "error: --cross_test_sets: two dirs named $(basename "${_d}")"; exit 2; }
        cross_dir[${_name}]=${_d}
        cross_sim+=("${_name}")
    done
fi
emotion_list=${dumpdir}/raw/emotion_list
# Data names and their files in a data dir (espnet2_merit.utils.datadir.DATA_FILES).
data_files=$(${python} -c '
from espnet2_merit.utils.datadir import DATA_FILES
print(" ".join(f"{n},{f},{t}" for n, (f, t) in DATA_FILES.items()))')

# Options of merit_train shared by statistics and both training steps: every data
# file the directory has (a task uses what its head declares).
data_opts() {  # data_opts SPLIT DIR [dm]: with dm, the clean speech as "speech"
    local split=$1 dir=$2 dm=${3:-} entry name file kind
    if [ -n "${dm}" ]; then  # the mixer makes the noisy speech and its reference
        echo "--${split}_data_path_and_name_and_type ${dir}/spk1.scp,speech,sound"
    fi
    for entry in ${data_files}; do
        IFS=, read -r name file kind <<< "${entry}"
        if [ -n "${dm}" ] && { [ "${name}" = speech ] || [ "${name}" = speech_ref1 ]; }; then
            continue
        fi
        if [ -f "${dir}/${file}" ]; then
            echo "--${split}_data_path_and_name_and_type ${dir}/${file},${name},${kind}"
        fi
    done
}

if run_stage 1; then
    log "Stage 1: data preparation (local/data.sh ${local_data_opts})"
    _fp=$(fingerprint "${local_data_opts}" local/data.sh db.sh)
    if is_done "${datadir}/.done" "${_fp}"; then
        log "skip: ${datadir} is prepared with these options"
    else
        log "$(done_reason "${datadir}/.done"): preparing"
        job_begin "${prep_logdir}/data_prep.log"
        # shellcheck disable=SC2086
        job_add local/data.sh ${local_data_opts}
        job_add mark_done "${datadir}/.done" "${_fp}"
        job_run
    fi
    if [ -n "${unlabelled_sets}" ]; then
        _fp=$(fingerprint "${unlabelled_sets}" "${datadir}/.done")
        if is_done "${datadir}/${train_set}/.done" "${_fp}"; then
            log "skip: ${datadir}/${train_set} combines ${labelled_set} with ${unlabelled_sets}"
        else
            _pools=()
            for dset in ${unlabelled_sets}; do _pools+=(--unlabelled "${datadir}/${dset}"); done
            log "${datadir}/${train_set}: ${labelled_set} and the unlabelled ${unlabelled_sets}"
            ${python} -m espnet2_merit.bin.merit_combine_data "${_pools[@]}" \
                "${datadir}/${labelled_set}" "${datadir}/${train_set}"
            mark_done "${datadir}/${train_set}/.done" "${_fp}"
        fi
    fi
fi

if run_stage 2 && [ "${simulate_noise}" != true ]; then
    log "Stage 2: --simulate_noise false: the corpus's noisy/clean pairs are used as they are"
elif run_stage 2; then
    log "Stage 2: noise simulation: train/dev at ${train_snr} dB, tests at ${test_snrs} dB (${noise_sets})"
    [ -z "${noise_seen_dirs}" ] && { log "error: --noise_seen_dirs is empty (set it in db.sh)"; exit 2; }
    job_begin "${prep_logdir}/noise_sim.log"
    job_add ${python} -m espnet2_merit.bin.merit_prepare_noise --seen_dirs "${noise_seen_dirs}" \
        --unseen_dirs "${noise_unseen_dirs}" --outdir "${datadir}/noise" \
        --dev_ratio "${noise_dev_ratio}" --test_ratio "${noise_test_ratio}" --seed "${sim_seed}"
    snr_opts() { if [[ $1 == *:* ]]; then echo "--snr_range ${1%%:*} ${1##*:}"; else echo "--snr $1"; fi; }
    _rir_train=() _rir_dev=() _rir_opts=()
    if [ -n "${rir_seen_dirs}" ]; then
        log "reverberation: train/dev utterances reverberant with probability ${rir_prob}, ${rir_reference} SE reference; reverberant tests (rooms:${_rir_sets}) at ${rir_test_snrs} dB (${rir_noise_sets})"
        job_add ${python} -m espnet2_merit.bin.merit_prepare_noise --kind rir \
            --seen_dirs "${rir_seen_dirs}" --unseen_dirs "${rir_unseen_dirs}" \
            --outdir "${datadir}/rir" --dev_ratio "${rir_dev_ratio}" \
            --test_ratio "${rir_test_ratio}" --seed "${sim_seed}"
        _rir_opts=(--rir_reference "${rir_reference}" --rir_early_ms "${rir_early_ms}")
        _rir_train=(--rir_scp "${datadir}/rir/train.scp" --rir_prob "${rir_prob}" "${_rir_opts[@]}")
        _rir_dev=(--rir_scp "${datadir}/rir/dev.scp" --rir_prob "${rir_prob}" "${_rir_opts[@]}")
    fi
    # shellcheck disable=SC2046
    job_add ${python} -m espnet2_merit.bin.merit_simulate_noise --data_dir "${datadir}/${train_set}" \
        --noise_scp "${datadir}/noise/train.scp" $(snr_opts "${train_snr}") \
        --outdir "${datadir}/${train_sim}" --seed "${sim_seed}" --nj "${nj}" "${_rir_train[@]}"
    # shellcheck disable=SC2046
    job_add ${python} -m espnet2_merit.bin.merit_simulate_noise --data_dir "${datadir}/${valid_set}" \
        --noise_scp "${datadir}/noise/dev.scp" $(snr_opts "${train_snr}") \
        --outdir "${datadir}/${valid_sim}" --seed "$((sim_seed + 1))" --nj "${nj}" "${_rir_dev[@]}"
    for dset in ${test_sets}; do
        for noise in ${noise_sets}; do
            for snr in ${test_snrs}; do
                job_add ${python} -m espnet2_merit.bin.merit_simulate_noise --data_dir "${datadir}/${dset}" \
                    --noise_scp "${datadir}/noise/test_${noise}.scp" --snr "${snr}" \
                    --outdir "${datadir}/${dset}_${noise}_snr${snr}" \
                    --seed "$((sim_seed + 2))" --nj "${nj}"
            done
        done
        # Every test utterance reverberant; the seed of the dry test sets, so a
        # reverberant set has the same noise segments as its dry twin (paired).
        for room in ${_rir_sets}; do
            for noise in ${rir_noise_sets}; do
                for snr in ${rir_test_snrs}; do
                    job_add ${python} -m espnet2_merit.bin.merit_simulate_noise --data_dir "${datadir}/${dset}" \
                        --noise_scp "${datadir}/noise/test_${noise}.scp" --snr "${snr}" \
                        --rir_scp "${datadir}/rir/test_${room}.scp" --rir_prob 1 "${_rir_opts[@]}" \
                        --outdir "${datadir}/${dset}_rir${room}_${noise}_snr${snr}" \
                        --seed "$((sim_seed + 2))" --nj "${nj}"
                done
            done
        done
    done
    job_run
fi

if run_stage 3; then
    log "Stage 3: audio formatting: ${fs} Hz mono into ${dumpdir}/raw/org"
    _asr_opts=() _asr_fp=()
    if [ -n "${asr_model}" ]; then  # ASR: the transcripts of the formatted noisy speech
        [[ ${asr_sets} == missing || ${asr_sets} == all ]] || { log "error: --asr_sets must be missing or all, not ${asr_sets}"; exit 2; }
        _which="the sets without a text"
        [ "${asr_sets}" = missing ] || _which="every set (the reference kept as text.ref)"
        log "ASR: ${asr_model} (${asr_conf:-default options}) transcribes the noisy speech of ${_which}"
        _asr_opts=(--asr_model "${asr_model}")
        for _kv in ${asr_conf}; do _asr_opts+=(--asr_conf "${_kv}"); done
        _asr_fp=("asr ${asr_model} ${asr_conf}")
        if [ -d "${asr_model}" ]; then _asr_fp+=("${asr_model}"/*); fi  # a local model's files
    fi
    job_begin "${prep_logdir}/format_wav.log"
    for dset in "${train_sim}" "${valid_sim}" "${test_sim[@]}"; do
        _out=${dumpdir}/raw/org/${dset}
        _asr=false
        if [ -n "${asr_model}" ] && { [ "${asr_sets}" = all ] || [ ! -f "${datadir}/${dset}/text" ]; }; then
            _asr=true
        fi
        # The set's files, and the markers of the stages that wrote its audio (their
        # options change the audio, not always the lists); the ASR options when
        # this set is transcribed.
        _words=("--fs ${fs}" "${datadir}/${dset}"/* "${datadir}/${dset}/.done" "${datadir}/.done")
        [ "${_asr}" = false ] || _words+=("${_asr_fp[@]}")
        _fp=$(fingerprint "${_words[@]}")
        if is_done "${_out}/.done" "${_fp}"; then
            log "skip: ${_out}"
            continue
        fi
        job_add rm -rf "${_out}"
        job_add ${python} -m espnet2_merit.bin.merit_format_wav --fs "${fs}" --nj "${nj}" \
            "${datadir}/${dset}" "${_out}"
        if [ "${_asr}" = true ]; then  # the reference (if any) kept as text.ref
            _ref=()
            if [ -f "${datadir}/${dset}/text" ]; then
                job_add mv "${_out}/text" "${_out}/text.ref"
                _ref=(--ref_text "${_out}/text.ref" --wer_out "${_out}/asr_wer.json")
            fi
            job_add ${python} -m espnet2_merit.bin.merit_asr --wav_scp "${_out}/wav.scp" \
                --out "${_out}/text" "${_asr_opts[@]}" ${_ref[@]+"${_ref[@]}"}
        fi
        job_add mark_done "${_out}/.done" "${_fp}"
    done
    job_run
    for dset in "${train_sim}" "${valid_sim}" "${test_sim[@]}"; do
        _wer=${dumpdir}/raw/org/${dset}/asr_wer.json
        [ -z "${asr_model}" ] || [ ! -f "${_wer}" ] || log "${dset}: ASR $(${python} -c '
import json, sys
r = json.load(open(sys.argv[1]))
print("WER {:.2f}% of {} words, {} utterances".format(100 * r["wer"], r["ref_words"], r["utterances"]))' "${_wer}")"
    done
fi

if run_stage 4; then
    log "Stage 4: duration filtering of ${train_sim} and ${valid_sim}: ${min_sec}-${max_sec} s (test sets are kept whole)"
    # A set whose input and options are unchanged is kept as it is (with the
    # noisy-input scores cached in it by stage 10).
    job_begin "${prep_logdir}/filter.log"
    for dset in "${train_sim}" "${valid_sim}" "${test_sim[@]}"; do
        _out=${dumpdir}/raw/${dset}
        _filter=true
        [[ " ${train_sim} ${valid_sim} " == *" ${dset} "* ]] || _filter=false
        _fp=$(fingerprint "${_filter} ${min_sec} ${max_sec} ${fs}" "${dumpdir}/raw/org/${dset}/.done")
        if is_done "${_out}/.done" "${_fp}"; then
            log "skip: ${_out}"
            continue
        fi
        job_add rm -rf "${_out}.tmp"
        if [ "${_filter}" = true ]; then
            job_add ${python} -m espnet2_merit.bin.merit_filter --min_sec "${min_sec}" \
                --max_sec "${max_sec}" --fs "${fs}" "${dumpdir}/raw/org/${dset}" "${_out}.tmp"
        else
            job_add cp -r "${dumpdir}/raw/org/${dset}" "${_out}.tmp"
        fi
        job_add mark_done "${_out}.tmp/.done" "${_fp}"
        job_add rm -rf "${_out}"
        job_add mv "${_out}.tmp" "${_out}"
    done
    job_run
fi

if run_stage 5; then
    log "Stage 5: label list and class statistics: ${emotion_list}"
    job_begin "${prep_logdir}/labels.log"
    job_add ${python} -m espnet2_merit.bin.merit_labels --emotion_list "${datadir}/emotion_list" \
        --train_dir "${dumpdir}/raw/${train_sim}" \
        --check_dirs "${dumpdir}/raw/${valid_sim}" "${test_sim[@]/#/${dumpdir}/raw/}" \
        --outdir "${dumpdir}/raw"
    job_run
fi

uses_global_mvn() {  # uses_global_mvn CONFIG ARGS: does the run normalise with it?
    grep -q "^normalize: *global_mvn" "$1" || [[ $2 == *"--normalize global_mvn"* ]]
}

if run_stage 6; then
    log "Stage 6: statistics (--collect_stats) in ${stats_dir}"
    _fp=$(fingerprint "${train_config}" "${train_args}" \
        "${dumpdir}/raw/${train_sim}/.done" "${dumpdir}/raw/${valid_sim}/.done")
    if ! uses_global_mvn "${train_config}" "${train_args}" && \
       { [ -z "${step1_config}" ] || ! uses_global_mvn "${step1_config}" "${step1_args}"; }; then
        log "skip: no config normalises with global_mvn (the only user of the statistics)"
    elif is_done "${stats_dir}/.done" "${_fp}"; then
        log "skip: ${stats_dir} is made from these inputs"
    else
        _logdir=${stats_dir}/logdir
        rm -rf "${_logdir}"
        mkdir -p "${_logdir}"
        _nj=$(min "${nj}" "$(wc -l < "${dumpdir}/raw/${train_sim}/wav.scp")" \
                          "$(wc -l < "${dumpdir}/raw/${valid_sim}/wav.scp")")
        ${python} -m espnet2_merit.bin.merit_split --nj "${_nj}" \
            "${dumpdir}/raw/${train_sim}/wav.scp" "${_logdir}/train" > /dev/null
        ${python} -m espnet2_merit.bin.merit_split --nj "${_nj}" \
            "${dumpdir}/raw/${valid_sim}/wav.scp" "${_logdir}/valid" > /dev/null
        log "${_nj} jobs, log: ${_logdir}/stats.*.log"
        # shellcheck disable=SC2046,SC2086
        ${train_cmd} JOB=1:"${_nj}" "${_logdir}/stats.JOB.log" \
            ${python} -m espnet2_merit.bin.merit_train --collect_stats true \
                --config "${train_config}" --ngpu 0 --normalize none \
                --emotion_list "${emotion_list}" \
                $(data_opts train "${dumpdir}/raw/${train_sim}") \
                $(data_opts valid "${dumpdir}/raw/${valid_sim}") \
                --train_shape_file "${_logdir}/train/keys.JOB" \
                --valid_shape_file "${_logdir}/valid/keys.JOB" \
                --output_dir "${_logdir}/stats.JOB" ${train_args}
        _dirs=()
        for n in $(seq "${_nj}"); do _dirs+=(--input_dir "${_logdir}/stats.${n}"); done
        ${python} -m espnet2.bin.aggregate_stats_dirs "${_dirs[@]}" \
            --output_dir "${stats_dir}"
        mark_done "${stats_dir}/.done" "${_fp}"
    fi
fi

train_step() {  # train_step CONFIG OUTDIR EXTRA_ARGS [INPUT...]: one training run
    local config=$1 out=$2 extra=$3 norm="" aug="" fp
    shift 3
    local aug_inputs=()
    # global_mvn z-normalises waveforms with the stage-6 training-set statistics.
    if uses_global_mvn "${config}" "${extra}"; then
        norm="--normalize_conf stats_file=${stats_dir}/train/feats_stats.npz"
    fi
    # A config with an augmentation section (MTL-AUG) draws its added noise and
    # rooms from the stage-2 training pools.
    if grep -q "^augmentation:" "${config}"; then
        aug="--augmentation noise_scp=${datadir}/noise/train.scp"
        aug_inputs=("${datadir}/noise/train.scp")
        # stage 2 writes the RIR pool when there are RIR dirs (it may not exist yet)
    if [ -n "${rir_seen_dirs}" ] || [ -f "${datadir}/rir/train.scp" ]; then
            aug+=" --augmentation rir_scp=${datadir}/rir/train.scp"
            aug_inputs+=("${datadir}/rir/train.scp")
        fi
    fi
    fp=$(fingerprint "${config}" "${extra} ${norm} ${dm_opts} ${aug} ${ngpu} ${num_nodes}" \
        "${emotion_list}" "${dumpdir}/raw/${train_sim}/.done" "${dumpdir}/raw/${valid_sim}/.done" \
        ${norm:+"${stats_dir}/.done"} "${dm_inputs[@]}" "${aug_inputs[@]}" "$@")
    if is_done "${out}/.done" "${fp}"; then
        log "skip: ${out} is trained with these options and data"
        return
    fi
    if [ -f "${out}/checkpoint.pth" ]; then
        log "$(done_reason "${out}/.done"): training again, resuming from its checkpoint"
    fi
    mkdir -p "${out}"
    # One node: ESPnet spawns one process per GPU itself. Several nodes (Slurm, as
    # ESPnet's launch.py does it): one job of ${num_nodes} nodes with one task each
    # and ${ngpu} GPUs per node; srun starts the tasks, each spawns a process per
    # GPU, ranks from Slurm (node rank SLURM_NODEID, world size ngpu x nodes),
    # rendezvous through a new file on the shared disk (a stale one would hang it).
    local launch=() dist=()
    if [ "${num_nodes}" -gt 1 ]; then
        rm -f "${out}"/.dist_init.*
        launch=(srun --export=ALL)
        dist=(--multiprocessing_distributed true --dist_launcher slurm
              --dist_init_method "file://$(cd "${out}" && pwd)/.dist_init.$$")
        [ "${ngpu}" -eq 0 ] && dist+=(--dist_backend gloo)
    elif [ "${ngpu}" -gt 1 ]; then
        dist=(--multiprocessing_distributed true)  # else ESPnet uses DataParallel
    fi
    log "training ${config} -> ${out} (log: ${out}/train.log)"
    # shellcheck disable=SC2046,SC2086
    ${cuda_cmd} --gpu "${ngpu}" --num_nodes "${num_nodes}" "${out}/train.log" \
        "${launch[@]}" ${python} -m espnet2_merit.bin.merit_train --config "${config}" \
            --output_dir "${out}" --ngpu "${ngpu}" "${dist[@]}" \
            --resume true --emotion_list "${emotion_list}" ${norm} \
            $(data_opts train "${dumpdir}/raw/${train_sim}" ${dm_opts:+dm}) ${dm_opts} ${aug} \
            $(data_opts valid "${dumpdir}/raw/${valid_sim}") \
            --train_shape_file "${dumpdir}/raw/${train_sim}/wav.scp" \
            --valid_shape_file "${dumpdir}/raw/${valid_sim}/wav.scp" ${extra}
    mark_done "${out}/.done" "${fp}"
}

# The two-run protocol's branch runs (--branch_configs, trained by stage 7) and the
# parts stage 8 takes from each (--branch_init), checked before either stage runs.
declare -A branch_config=() branch_parts=() branch_dir=()
branch_names=()
if run_stage 7 || run_stage 8; then
    for _entry in ${branch_configs}; do
        [[ ${_entry} == ?*=?* ]] || { log "error: --branch_configs: '${_entry}' is not name=config"; exit 2; }
        _name=${_entry%%=*}
        [[ ${_name} =~ ^[A-Za-z0-9_-]+$ ]] && [ "${_name}" != step1 ] || \
            { log "error: --branch_configs: bad branch name '${_name}' (letters, digits, _ and -; not step1)"; exit 2; }
        [ -z "${branch_config[${_name}]:-}" ] || { log "error: --branch_configs: two branches named ${_name}"; exit 2; }
        _conf=${_entry#*=}
        if [ -d "${_conf}" ]; then  # a finished run: its experiment dir
            [ -f "${_conf}/config.yaml" ] || { log "error: --branch_configs ${_entry}: ${_conf} is not an experiment dir (no config.yaml)"; exit 2; }
            branch_dir[${_name}]=${_conf%/}
            _conf=${_conf%/}/config.yaml
        fi
        [ -f "${_conf}" ] || { log "error: --branch_configs ${_entry}: no such file ${_conf}"; exit 2; }
        branch_config[${_name}]=${_conf}
        branch_names+=("${_name}")
    done
    _seen=" "
    for _entry in ${branch_init}; do
        [[ ${_entry} == ?*=?* ]] || { log "error: --branch_init: '${_entry}' is not name=part,part"; exit 2; }
        _name=${_entry%%=*}
        [ -n "${branch_config[${_name}]:-}" ] || \
            { log "error: --branch_init ${_entry}: no branch named '${_name}' in --branch_configs (branches: ${branch_names[*]:-none})"; exit 2; }
        [ -z "${branch_parts[${_name}]:-}" ] || { log "error: --branch_init: branch ${_name} given twice"; exit 2; }
        IFS=, read -ra _parts <<< "${_entry#*=}"
        for _part in "${_parts[@]}"; do
            [[ ${_part} =~ ^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$ ]] || \
                { log "error: --branch_init ${_entry}: bad part '${_part}' (a parameter prefix: frontend, fusion, text_frontend, heads.<task>, ...)"; exit 2; }
            [[ ${_seen} != *" ${_part} "* ]] || { log "error: --branch_init: part ${_part} taken from two branches"; exit 2; }
            _seen+="${_part} "
        done
        branch_parts[${_name}]=${_entry#*=}
    done
    for _name in "${branch_names[@]}"; do
        [ -n "${branch_parts[${_name}]:-}" ] || \
            { log "error: --branch_configs: branch ${_name} has no --branch_init entry (stage 8 would take nothing from it)"; exit 2; }
    done
fi
branch_exp() { echo "${branch_dir[$1]:-${expdir}/merit_${tag}_$1}"; }  # branch_exp NAME: its experiment
best_model() {  # best_model CONFIG: the checkpoint of its first best_model_criterion
    ${python} -c '
import sys, yaml
conf = yaml.safe_load(open(sys.argv[1])) or {}
phase, key, _ = (conf.get("best_model_criterion") or [["valid", "loss", "min"]])[0]
print(f"{phase}.{key}.best.pth")' "$1"
}

if run_stage 7; then
    if [ -n "${step1_config}" ]; then
        log "Stage 7: step-1 training (SSL frozen): ${step1_config}"
        train_step "${step1_config}" "${step1_exp}" "${step1_args}"
    elif [ ${#branch_names[@]} -eq 0 ]; then
        log "Stage 7: no --step1_config: skipped"
    fi
    for _name in "${branch_names[@]}"; do
        _conf=${branch_config[${_name}]}
        if [ -n "${branch_dir[${_name}]:-}" ]; then
            log "Stage 7: branch run ${_name} (two-run protocol): the finished run ${branch_dir[${_name}]}, not trained here"
            continue
        fi
        log "Stage 7: branch run ${_name} (two-run protocol): ${_conf} -> $(branch_exp "${_name}")"
        if uses_global_mvn "${_conf}" "${branch_args}" && [ ! -f "${stats_dir}/.done" ]; then
            log "error: branch ${_name} (${_conf}) normalises with global_mvn but ${stats_dir} has no statistics: stage 6 collects them when --train_config does"
            exit 1
        fi
        train_step "${_conf}" "$(branch_exp "${_name}")" "${branch_args}"
    done
fi

if run_stage 8; then
    log "Stage 8: step-2 training (joint): ${train_config} -> ${exp}"
    _init="" _inputs=()
    if [ -n "${step1_config}" ]; then
        _ckpt=${step1_exp}/${inference_model}
        [ -f "${_ckpt}" ] || { log "error: ${_ckpt} missing: run stage 7"; exit 1; }
        [ -n "${step2_init}" ] || { log "error: --step2_init is empty (heads, fusion, ... or all)"; exit 2; }
        log "step 2 starts from step 1's ${step2_init}"
        for _part in ${step2_init}; do
            if [ "${_part}" = all ]; then
                _init+=" --init_param ${_ckpt}"
            else
                _init+=" --init_param ${_ckpt}:${_part}:${_part}"
            fi
        done
        _inputs=("${step1_exp}/.done")
    fi
    for _name in "${branch_names[@]}"; do  # the two-run protocol's branch runs
        _bexp=$(branch_exp "${_name}")
        _ckpt=${_bexp}/$(best_model "${branch_config[${_name}]}")
        if [ ! -f "${_bexp}/.done" ] || [ ! -f "${_ckpt}" ]; then
            _how="run stage 7"
            [ -z "${branch_dir[${_name}]:-}" ] || _how="train it first (a finished run was given)"
            log "error: branch run ${_name} is not finished (${_bexp}/.done or ${_ckpt} missing): ${_how}"
            exit 1
        fi
        log "the fused model takes ${branch_parts[${_name}]//,/, } from branch ${_name} (${_ckpt})"
        IFS=, read -ra _parts <<< "${branch_parts[${_name}]}"
        for _part in "${_parts[@]}"; do _init+=" --init_param ${_ckpt}:${_part}:${_part}"; done
        _inputs+=("${_bexp}/.done")
    done
    train_step "${train_config}" "${exp}" "${_init} ${train_args}" "${_inputs[@]}"
fi

if run_stage 9; then
    log "Stage 9: inference with ${exp}/${inference_model} on ${#test_sim[@]} sets -> ${decode_dir}"
    [ -f "${exp}/${inference_model}" ] || { log "error: ${exp}/${inference_model} missing: run stage 8"; exit 1; }
    _dir=${decode_dir}
    _todo=()
    declare -A _fps=()
    # A model with a text frontend reads each set's transcripts (its data dir's
    # Kaldi "text", also under --enh_exp); --asr_model in --inference_args
    # transcribes the utterances without one.
    _reads_text=false
    _tf=""  # (no config.yaml yet: a scheduler still runs stage 8's job)
    [ ! -f "${exp}/config.yaml" ] || \
        _tf=$(sed -n 's/^text_frontend: *\([^ #]*\).*/\1/p' "${exp}/config.yaml")
    case ${_tf} in ""|null|none|None|"~") ;; *) _reads_text=true ;; esac
    _asr=false
    [[ " ${inference_args} " =~ [[:space:]]--asr_model[[:space:]=] ]] && _asr=true
    for dset in "${test_sim[@]}" "${cross_sim[@]}"; do
        _input=${dumpdir}/raw/${dset}/.done
        [ -n "${cross_dir[${dset}]:-}" ] && _input=${cross_dir[${dset}]}/wav.scp
        [ -n "${enh_exp}" ] && _input=${enh_exp}/decode/${dset}/spk1.scp
        _text_in=""
        ${_reads_text} && _text_in=${cross_dir[${dset}]:-${dumpdir}/raw/${dset}}/text
        _fps[${dset}]=$(fingerprint "${exp}/${inference_model}" "${exp}/config.yaml" \
            "${inference_args} ${gpu_inference}" "${_input}" ${_text_in})
        is_done "${_dir}/${dset}/.done" "${_fps[${dset}]}" || _todo+=("${dset}")
    done
    if [ ${#_todo[@]} -eq 0 ]; then
        log "skip: every set is decoded"
    else
        # One job list over all sets (keys "<set>__<utt>"): each job loads the model
        # once, however many test sets and SNRs there are.
        _logdir=${_dir}/logdir
        rm -rf "${_logdir}"
        mkdir -p "${_logdir}"
        for dset in "${_todo[@]}"; do
            if [ -n "${enh_exp}" ]; then  # SE pre-processing: classify enhanced speech
                _scp=${enh_exp}/decode/${dset}/spk1.scp
                [ -f "${_scp}" ] || { log "error: ${_scp} missing: decode ${enh_exp} first"; exit 1; }
            else
                _scp=${cross_dir[${dset}]:-${dumpdir}/raw/${dset}}/wav.scp
                [ -f "${_scp}" ] || { log "error: ${_scp} missing"; exit 1; }
            fi
            sed "s/^/${dset}__/" "${_scp}"
        done | sort > "${_logdir}/all.scp"
        _text_opts=()
        if ${_reads_text}; then
            : > "${_logdir}/all.text"
            for dset in "${_todo[@]}"; do
                _text=${cross_dir[${dset}]:-${dumpdir}/raw/${dset}}/text
                if [ -f "${_text}" ]; then
                    sed "/^[[:space:]]*$/d; s/^/${dset}__/" "${_text}" >> "${_logdir}/all.text"
                elif ! ${_asr}; then
                    log "error: ${exp}/config.yaml has a text_frontend (${_tf}): it reads transcripts, but ${_text} is missing (give the set a Kaldi text file, or --inference_args \"--asr_model <name or folder>\")"
                    exit 1
                fi
            done
            _text_opts=(--data_path_and_name_and_type "${_logdir}/all.text,text,text")
        fi
        _nj=$(${python} -m espnet2_merit.bin.merit_split --nj "${inference_nj}" \
            "${_logdir}/all.scp" "${_logdir}/keys")
        _ngpu=0
        [ "${gpu_inference}" = true ] && _ngpu=1
        log "${_nj} jobs, log: ${_logdir}/inference.*.log"
        # shellcheck disable=SC2086
        ${decode_cmd} --gpu "${_ngpu}" JOB=1:"${_nj}" "${_logdir}/inference.JOB.log" \
            ${python} -m espnet2_merit.bin.merit_inference --ngpu "${_ngpu}" \
                --train_config "${exp}/config.yaml" \
                --model_file "${exp}/${inference_model}" \
                --data_path_and_name_and_type "${_logdir}/all.scp,speech,sound" \
                "${_text_opts[@]}" \
                --key_file "${_logdir}/keys/keys.JOB" \
                --output_dir "${_logdir}/output.JOB" ${inference_args}
        # Split the shards' outputs back into one directory per set: every file
        # the shards' manifests (outputs.json) list, whatever the model's tasks.
        _opts=()
        # The cascade's enhanced speech is the SE model's: scored with it.
        [ -n "${enh_exp}" ] && _opts=(--waveforms_from "${enh_exp}/decode")
        ${python} -m espnet2_merit.bin.merit_merge_decode --sets "${_todo[@]}" \
            --out_dir "${_dir}" "${_opts[@]}" "${_logdir}"/output.*
        for dset in "${_todo[@]}"; do mark_done "${_dir}/${dset}/.done" "${_fps[${dset}]}"; done
    fi
fi

if run_stage 10; then
    log "Stage 10: scoring -> ${results_md}"
    # One job, one process for all sets (imports paid once). merit_score itself
    # skips a set whose scores are current: same inputs (content hashes), same metrics.
    job_begin "${decode_dir}/log/score.log"
    _opts=()
    for dset in "${test_sim[@]}"; do
        _opts+=(--ref_dir "${dumpdir}/raw/${dset}" --hyp_dir "${decode_dir}/${dset}"
                --out_dir "${decode_dir}/${dset}/score")
    done
    [ -n "${submission_format}" ] && _opts+=(--submission "${submission_format}")
    # The selection enters each set's score options: a changed one rescores it,
    # and RESULTS.md and stage 11 show the metrics the sets were scored with.
    # shellcheck disable=SC2206
    [ -n "${score_metrics}" ] && _opts+=(--metrics ${score_metrics})
    job_add ${python} -m espnet2_merit.bin.merit_score "${_opts[@]}" --nj "${nj}"
    if [ ${#cross_sim[@]} -gt 0 ]; then  # another corpus's sets, through the maps
        _opts=(--cross_label_map "${cross_label_map}" --cross_corpus "${cross_corpus}")
        [ -n "${cross_model_map}" ] && _opts+=(--cross_model_map "${cross_model_map}")
        # shellcheck disable=SC2206
        [ -n "${score_metrics}" ] && _opts+=(--metrics ${score_metrics})
        for dset in "${cross_sim[@]}"; do
            _opts+=(--ref_dir "${cross_dir[${dset}]}" --hyp_dir "${decode_dir}/${dset}"
                    --out_dir "${decode_dir}/${dset}/score")
        done
        job_add ${python} -m espnet2_merit.bin.merit_score "${_opts[@]}" --nj "${nj}"
    fi
    _note=()
    [ -n "${results_note}" ] && _note=(--results_note "${results_note}")
    job_add ${python} -m espnet2_merit.bin.merit_score --results "${exp}" \
        --decode_dir "${decode_dir}" "${_note[@]}"
    job_run
fi

if run_stage 11; then
    if [ -n "${compare_systems}" ]; then
        log "Stage 11: comparison of ${tag} with ${compare_systems}"
        _ref=${compare_reference:-${tag}}
        # This system is its decode dir: with --enh_exp the cascade's
        # decode_enh_<name>, which is what this run scored.
        # shellcheck disable=SC2086
        ${python} -m espnet2_merit.bin.merit_compare \
            --systems "${tag}=${decode_dir}" ${compare_systems} \
            --reference ${_ref} --out "${expdir}/compare/RESULTS.md"
    else
        log "Stage 11: no --compare_systems: skipped"
    fi
fi

if run_stage 12; then
    log "Stage 12: packing ${packed_model}"
    _opts=()
    for f in "${exp}/RESULTS.md" "${exp}"/images/*.png "${exp}"/*.png; do
        [ -f "${f}" ] && _opts+=(--option "${f}")
    done
    ${python} -m espnet2_merit.bin.merit_pack --train_config "${exp}/config.yaml" \
        --model_file "${exp}/${inference_model}" --outpath "${packed_model}" "${_opts[@]}"
    log "wrote ${packed_model}"
fi

if run_stage 13; then
    if [ -z "${hf_repo}" ]; then
        log "Stage 13: no --hf_repo: upload skipped"
    else
        log "Stage 13: upload ${packed_model} to https://huggingface.co/${hf_repo}"
        _dir=${exp}/hf_${hf_repo//\//_}
        rm -rf "${_dir}"
        if [ "${hf_dry_run}" = true ]; then
            mkdir -p "${_dir}"
        else
            command -v git-lfs > /dev/null || { log "error: git-lfs is not installed"; exit 1; }
            git clone "https://huggingface.co/${hf_repo}" "${_dir}"
        fi
        ${python} -m espnet2_merit.bin.merit_hf_readme --packed_model "${packed_model}" \
            --hf_repo "${hf_repo}" --exp "${exp}" --run_args "${run_args}" --outdir "${_dir}"
        if [ "${hf_dry_run}" = true ]; then
            log "dry run: ${_dir} holds what would be pushed:"
            (cd "${_dir}" && find . -type f | sort)
        else
            (cd "${_dir}" && git lfs track "*.pth" "*.zip" "*.npz" "*.pt" \
                && git add -A && git commit -m "Upload MERIT model ${tag}" && git push)
        fi
    fi
fi

if [ "${stop_stage}" -ge 10 ] && [ -f "${results_md}" ]; then
    log "Results (${results_md}):"
    sed -n '/^## Results/,/^## Expert usage/p' "${results_md}" | sed '$d'
fi
log "Successfully finished. [elapsed=${SECONDS}s]"
