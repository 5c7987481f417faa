#!/usr/bin/env bash
# Stage 1 for MSP-Podcast: Kaldi-style data dirs (train, dev, test1, test2, test3).
#   local/data.sh --corpus_dir /path/to/MSP-PODCAST --classes 4
set -euo pipefail
. ./path.sh
${python} local/msp_podcast_data.py --outdir data "$@"
