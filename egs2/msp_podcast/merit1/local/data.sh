#!/usr/bin/env bash
# Stage 1 for MSP-Podcast: Kaldi-style data dirs (train, dev, test1, test2, test3).
#   local/data.sh [--classes 4|8] [--splits Train,Development,...] [--corpus_dir DIR]
# The corpus is ${MSP_PODCAST} of db.sh unless --corpus_dir says otherwise, so
# --local_data_opts "--classes 8" keeps it.
set -euo pipefail
. ./path.sh
. ./db.sh
${python} local/msp_podcast_data.py --corpus_dir "${MSP_PODCAST}" --outdir data "$@"
