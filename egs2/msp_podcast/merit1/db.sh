# Corpus and noise locations (edit for your site).
# MSP-Podcast (v1.11 or later): Audios/*.wav and Labels/labels_consensus.csv
MSP_PODCAST=${MSP_PODCAST:-/path/to/MSP-PODCAST-Publish-1.11}
# Noise directories split into disjoint train/dev/test pools ("seen" noise), and
# directories used only for the "unseen" test set (e.g. DNS, Freesound / CRSS).
NOISE_SEEN_DIRS=${NOISE_SEEN_DIRS:-"/path/to/DNS-Challenge/noise /path/to/freesound"}
NOISE_UNSEEN_DIRS=${NOISE_UNSEEN_DIRS:-"/path/to/CRSS-4ENGLISH-14/noise"}
