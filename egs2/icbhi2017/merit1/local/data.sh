#!/usr/bin/env bash
# Stage 1 for ICBHI 2017: Kaldi-style data dirs train, dev and test of respiratory
# cycles (classes N C W B in the file "emotion"), test the official test set, dev a
# seeded patient-disjoint share of the official train patients (written to
# data/dev_patients.txt), the cycles' wavs under data/cycle_wav/.
#   local/data.sh [--fs 16000] [--pad_sec S | --fixed_sec S --fixed_pad repeat|zero]
#                 [--dev_ratio R] [--seed N] [--dev_patients FILE]
#                 [--split_file FILE] [--demographics FILE] [--corpus_dir DIR]
# The corpus is ${ICBHI} and the split ${ICBHI_SPLIT_FILE} of db.sh unless the options
# say otherwise (later options win), so --local_data_opts "--fixed_sec 8" keeps them.
set -euo pipefail
. ./path.sh
. ./db.sh
${python} local/icbhi_data.py --corpus_dir "${ICBHI}" --split_file "${ICBHI_SPLIT_FILE}" \
    --outdir data "$@"
