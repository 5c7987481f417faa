#!/usr/bin/env bash
# The mini recipe: the MSP-Podcast recipe's stages on a small generated corpus in
# MSP-Podcast's layout (espeak-ng speech whose emotion classes differ by prosody,
# generated noise with babble held out as unseen, pyroomacoustics RIRs with the
# corridor held out as unseen rooms) and a tiny random WavLM, so that every stage
# runs on a CPU in minutes:
#   ./run.sh                       # stages 1-13 (13: upload, skipped without --hf_repo)
#   ./run.sh --stage 8 --train_config conf/tuning/train_naive_mtl_tiny.yaml
#   ./run.sh --train_config conf/tuning/train_mtl_aug_tiny.yaml --unlabelled_sets test3
#                                  # MTL-AUG with the unlabelled pool (Test3)
set -euo pipefail

. ./db.sh

train_config=conf/tuning/train_sparse_merit_tiny.yaml

./merit.sh \
    --local_data_opts "--num_train 160 --num_dev 40 --num_test 60 --num_unlabelled 40 --nj 2" \
    --noise_seen_dirs "${NOISE_SEEN_DIRS}" \
    --noise_unseen_dirs "${NOISE_UNSEEN_DIRS}" \
    --train_set train --valid_set dev --test_sets "test1" \
    --train_snr 5 --test_snrs "-5 0 5 10" \
    --rir_seen_dirs "${RIR_SEEN_DIRS}" \
    --rir_unseen_dirs "${RIR_UNSEEN_DIRS}" \
    --rir_prob 0.5 --rir_reference dry \
    --rir_sets "seen unseen" --rir_noise_sets seen --rir_test_snrs 5 \
    --min_sec 1.0 --max_sec 20.0 \
    --step1_config same \
    --train_config "${train_config}" \
    --step1_args "--freeze_param frontend.upstream --max_epoch 3" \
    --train_args "--max_epoch 10" \
    --results_note local/results_note.md \
    --ngpu 0 --nj 2 --inference_nj 2 \
    "$@"
