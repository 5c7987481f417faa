#!/usr/bin/env bash
# Stage 1 for CREMA-D: Kaldi-style data dirs train, dev and test, split by actor
# (written to data/actor_split.txt).
#   local/data.sh [--classes 4|6] [--seed N] [--dev_ratio R] [--test_ratio R]
#                 [--split_file FILE] [--corpus_dir DIR]
# The corpus is ${CREMA_D} of db.sh unless --corpus_dir says otherwise, so
# --local_data_opts "--classes 6" keeps it.
set -euo pipefail
. ./path.sh
. ./db.sh
${python} local/crema_d_data.py --corpus_dir "${CREMA_D}" --outdir data "$@"
