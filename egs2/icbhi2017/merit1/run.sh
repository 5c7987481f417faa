#!/usr/bin/env bash
# Sparse MERIT on ICBHI 2017 (respiratory cycles, 4 classes: N normal, C crackle,
# W wheeze, B both; in the data dirs' "emotion" file, which the stage script and the
# classifier read whatever the classes are): noisy cycles from the clinical noise
# pools of db.sh, tests at -5/0/5/10 dB on seen and unseen noise, and the official
# test set as recorded (--clean_test_sets test: the challenge's own protocol).
# Train/dev split the official train patients (data/dev_patients.txt); test is the
# official test set.
#   ./run.sh --stage 1 --stop_stage 13
#   ./run.sh --local_data_opts "--fixed_sec 8"   # 8 s windows, short cycles repeated
# Frontend: a config matter. The default is a log-mel fbank frontend
# (conf/fbank_*.yaml, frontend: fbank), with no SSL model to freeze, hence no step 1
# (--step1_config ""). The WavLM (s3prl) systems of the speech recipes are
# conf/ssl/*.yaml, SSL by YAML, with step 1 (SSL frozen) as in the paper:
#   ./run.sh --train_config conf/ssl/sparse_merit.yaml --step1_config same
# The five-system comparison (fbank): classifier on noisy cycles, enhance-then-
# classify (SE-only output into that classifier), naive MTL, dense and sparse MERIT:
#   ./run.sh --train_config conf/fbank_ser_only.yaml
#   ./run.sh --train_config conf/fbank_se_only.yaml --stop_stage 9
#   ./run.sh --train_config conf/fbank_ser_only.yaml --enh_exp exp/merit_fbank_se_only \
#       --stage 9 --stop_stage 10
#   ./run.sh --train_config conf/fbank_naive_mtl.yaml   (fbank_dense_merit likewise)
#   ./run.sh --stage 11 --stop_stage 11 --compare_systems "mtl=exp/merit_fbank_naive_mtl \
#       sepre=exp/merit_fbank_ser_only/decode_enh_merit_fbank_se_only" \
#       --compare_reference "sepre mtl"
# Cycles last 0.2-16 s, hence --min_sec 0.1 for training (test sets are kept whole).
# Stage 10 adds the ICBHI challenge's scores (Rocha et al. 2019) to the default
# metrics: sensitivity (abnormal cycles of the exact class), specificity (normal
# cycles, class N) and their mean, the ICBHI score (columns ICBHI Se / Sp / score).
set -euo pipefail

. ./db.sh

train_config=conf/fbank_sparse_merit.yaml

./merit.sh \
    --local_data_opts "" \
    --noise_seen_dirs "${NOISE_SEEN_DIRS}" \
    --noise_unseen_dirs "${NOISE_UNSEEN_DIRS}" \
    --rir_seen_dirs "${RIR_SEEN_DIRS}" --rir_unseen_dirs "${RIR_UNSEEN_DIRS}" \
    --train_set train --valid_set dev --test_sets test \
    --clean_test_sets test \
    --train_snr 5 --test_snrs "-5 0 5 10" \
    --min_sec 0.1 --max_sec 20.0 \
    --step1_config "" \
    --score_metrics "default icbhi_se icbhi_sp icbhi_score" \
    --train_config "${train_config}" \
    --ngpu 1 --nj 16 --inference_nj 8 --gpu_inference true \
    "$@"
