# Corpus and noise locations (edit for your site).
# IEMOCAP (IEMOCAP_full_release, https://sail.usc.edu/iemocap/); stage 1
# (local/iemocap_data.py) reads, for each of the five sessions,
#   ${IEMOCAP}/Session{1..5}/sentences/wav/<dialog>/<utt>.wav   16 kHz mono utterances
#   ${IEMOCAP}/Session{1..5}/dialog/EmoEvaluation/<dialog>.txt  labels, one line
#       "[start - end]<TAB><utt><TAB><code><TAB>[valence, activation, dominance]"
#       per utterance (and evaluator / header lines, skipped)
# e.g. Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M000.wav and
# Session1/dialog/EmoEvaluation/Ses01F_impro01.txt; nothing else of the release
# (video, MoCap, transcriptions) is used. Set IEMOCAP in the environment to override
# (the tests point it at a miniature: local/make_mini_iemocap.py).
IEMOCAP=${IEMOCAP:-/path/to/IEMOCAP_full_release}
# EmoBox (github.com/emo-box/EmoBox) published folds instead of this recipe's own
# split: its data/iemocap folder (fold_<n>/iemocap_{train,test}_fold_<n>.jsonl,
# label_map.json, data.seg.wrd.stm; wav paths downloads/iemocap/... are read under
# the corpus root above). Empty: the recipe's split; set: run.sh's fold K prepares
# EmoBox's fold K (local/data.sh --emobox_dir DIR does the same for one run).
EMOBOX_IEMOCAP=${EMOBOX_IEMOCAP:-}
# Noise directories split into disjoint train/dev/test pools ("seen" noise), and
# directories used only for the "unseen" test set (e.g. DNS, Freesound / CRSS).
NOISE_SEEN_DIRS=${NOISE_SEEN_DIRS:-"/path/to/DNS-Challenge/noise /path/to/freesound"}
NOISE_UNSEEN_DIRS=${NOISE_UNSEEN_DIRS:-"/path/to/CRSS-4ENGLISH-14/noise"}
# Room impulse responses for stage 2's reverberation (empty: none): directories of
# RIR wavs, one room type each, split into disjoint train/dev/test pools ("seen"
# rooms), and room types used only for the unseen-rooms test sets; e.g. OpenSLR 28's
# simulated RIRs:
#   RIR_SEEN_DIRS="/path/to/RIRS_NOISES/simulated_rirs/smallroom /path/to/RIRS_NOISES/simulated_rirs/mediumroom"
#   RIR_UNSEEN_DIRS="/path/to/RIRS_NOISES/simulated_rirs/largeroom"
RIR_SEEN_DIRS=${RIR_SEEN_DIRS:-""}
RIR_UNSEEN_DIRS=${RIR_UNSEEN_DIRS:-""}
