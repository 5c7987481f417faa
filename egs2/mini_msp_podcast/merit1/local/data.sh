#!/usr/bin/env bash
# Stage 1 of the mini recipe: generate a small MSP-Podcast-format corpus from
# espeak-ng speech (emotion classes differ by prosody), generated noise pools, room
# impulse responses (pyroomacoustics), a tiny random WavLM checkpoint and a tiny
# random RoBERTa (exp/text/roberta_tiny, for the text configs), then
# prepare the corpus exactly as the real recipe. --num_unlabelled N (> 0) adds an
# unlabelled pool like MSP-Podcast's Test3 (speakers of its own, labels withheld),
# prepared as data/test3 (wav.scp, utt2spk, utt2gender; no emotion files).
set -euo pipefail
. ./path.sh
. ./db.sh

num_train=160
num_dev=40
num_test=60
num_unlabelled=0
nj=2
seed=0
help_message="Usage: $0 [--num_train N] [--num_dev N] [--num_test N] [--num_unlabelled N] [--nj N] [--seed N]"
. scripts/utils/parse_options.sh || exit 1

if ! command -v espeak-ng > /dev/null; then
    echo "$0: espeak-ng is missing: apt-get install -y espeak-ng sox" >&2
    exit 1
fi
# Skips by itself when its .done matches the options.
${python} local/make_mini_msp_podcast.py --outdir "${MSP_PODCAST}" \
    --num_train "${num_train}" --num_dev "${num_dev}" --num_test "${num_test}" \
    --num_unlabelled "${num_unlabelled}" --seed "${seed}" --nj "${nj}"
if [ ! -f "${NOISE_ROOT}/.done" ]; then
    ${python} local/make_mini_noise.py --outdir "${NOISE_ROOT}" --seed "${seed}"
    touch "${NOISE_ROOT}/.done"
fi
# make_mini_rir.py skips by itself when its .done matches the options.
${python} local/make_mini_rir.py --outdir "${RIR_ROOT}" --seed "${seed}"
# The tiny SSL model the tiny configs point to (frontend_conf.path_or_url).
${python} -c "from espnet2_merit.utils.ssl_checkpoint import make_wavlm_checkpoint as m; \
m('exp/ssl/wavlm_tiny.pt', 'tiny', seed=${seed})"
# The tiny RoBERTa the tiny text configs point to (text_frontend_conf.model_name_or_path).
${python} -c "from espnet2_merit.utils.text_checkpoint import make_roberta_checkpoint as m; \
m('exp/text/roberta_tiny', seed=${seed})"
splits=Train,Development,Test1
if [ "${num_unlabelled}" -gt 0 ]; then
    splits+=,Test3
else  # a pool of an earlier run would list audio the corpus no longer has
    rm -rf data/test3
fi
${python} local/msp_podcast_data.py --corpus_dir "${MSP_PODCAST}" --outdir data \
    --classes 4 --splits "${splits}"
