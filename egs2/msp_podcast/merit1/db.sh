# Corpus and noise locations (edit for your site).
# MSP-Podcast (v1.11 or later): Audios/*.wav and Labels/labels_consensus.csv;
# Labels/labels_detailed.csv (individual annotations), if present, gives
# data/<split>/emotion_votes
MSP_PODCAST=${MSP_PODCAST:-/path/to/MSP-PODCAST-Publish-1.11}
# Noise directories split into disjoint train/dev/test pools ("seen" noise), and
# directories used only for the "unseen" test set (e.g. DNS, Freesound / CRSS).
NOISE_SEEN_DIRS=${NOISE_SEEN_DIRS:-"/path/to/DNS-Challenge/noise /path/to/freesound"}
NOISE_UNSEEN_DIRS=${NOISE_UNSEEN_DIRS:-"/path/to/CRSS-4ENGLISH-14/noise"}
# Room impulse responses for stage 2's reverberation (empty: none, the paper's
# setting): directories of RIR wavs, one room type each, split into disjoint
# train/dev/test pools ("seen" rooms), and room types used only for the
# unseen-rooms test sets; e.g. OpenSLR 28's simulated RIRs:
#   RIR_SEEN_DIRS="/path/to/RIRS_NOISES/simulated_rirs/smallroom /path/to/RIRS_NOISES/simulated_rirs/mediumroom"
#   RIR_UNSEEN_DIRS="/path/to/RIRS_NOISES/simulated_rirs/largeroom"
RIR_SEEN_DIRS=${RIR_SEEN_DIRS:-""}
RIR_UNSEEN_DIRS=${RIR_UNSEEN_DIRS:-""}
