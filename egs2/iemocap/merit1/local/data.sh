#!/usr/bin/env bash
# Stage 1 for IEMOCAP: the Kaldi-style data dirs train, dev, test of one
# leave-one-session-out fold (4 classes A S H N, exc merged into hap).
#   local/data.sh --fold K [--outdir DIR] [--dev_split session|speaker]
# The corpus is ${IEMOCAP} of db.sh; the output goes to data/ unless --outdir says
# otherwise. run.sh passes --local_data_opts "--fold K --outdir data/foldK" together
# with merit.sh's --datadir data/foldK (merit.sh does not pass its --datadir here).
set -euo pipefail
. ./path.sh
. ./db.sh
${python} local/iemocap_data.py --corpus_dir "${IEMOCAP}" --outdir data "$@"
