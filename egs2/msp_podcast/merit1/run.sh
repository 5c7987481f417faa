#!/usr/bin/env bash
# Sparse MERIT on MSP-Podcast (4 classes, the paper's setting): noisy speech from
# the noise pools of db.sh, step 1 with WavLM frozen, step 2 joint fine-tuning,
# tests at -5/0/5/10 dB on seen and unseen noise (and, with RIR directories in
# db.sh, reverberant train/dev speech and reverberant tests in seen and unseen rooms).
#   ./run.sh --stage 1 --stop_stage 13
# Baselines: ./run.sh --train_config conf/naive_mtl.yaml (or dense_merit, ser_only,
# se_only); the SE pre-processing baseline classifies an SE-only model's output:
#   ./run.sh --train_config conf/ser_only.yaml --enh_exp exp/merit_se_only --stage 9
# Test3 (labels withheld) is decoded as it is and written as the challenge's
# submission files (exp/<model>/decode/test3/score/submission_*.csv).
# Cross-corpus tests: this model on another corpus's test sets, labels through
# conf/label_map_shared4.txt and that corpus's map (stages 9-10), e.g.
#   ./run.sh --stage 9 --stop_stage 10 \
#       --cross_test_sets "../../crema_d/merit1/dump/raw/test_seen_snr5" \
#       --cross_label_map ../../crema_d/merit1/conf/label_map_shared4.txt
set -euo pipefail

. ./db.sh

train_config=conf/sparse_merit.yaml

./merit.sh \
    --local_data_opts "--classes 4" \
    --noise_seen_dirs "${NOISE_SEEN_DIRS}" \
    --noise_unseen_dirs "${NOISE_UNSEEN_DIRS}" \
    --rir_seen_dirs "${RIR_SEEN_DIRS}" --rir_unseen_dirs "${RIR_UNSEEN_DIRS}" \
    --train_set train --valid_set dev --test_sets "test1 test2" \
    --clean_test_sets test3 --submission_format msp_podcast \
    --train_snr 5 --test_snrs "-5 0 5 10" \
    --min_sec 1.0 --max_sec 20.0 \
    --step1_config same \
    --train_config "${train_config}" \
    --ngpu 1 --nj 16 --inference_nj 8 --gpu_inference true \
    --cross_model_map conf/label_map_shared4.txt \
    "$@"
