# Locations of the mini recipe's generated corpus and noise (stage 1 writes them).
MSP_PODCAST=${MSP_PODCAST:-downloads/mini_msp_podcast}
NOISE_ROOT=${NOISE_ROOT:-downloads/mini_noise}
# babble is held out: the "unseen" test noise.
NOISE_SEEN_DIRS="${NOISE_ROOT}/white ${NOISE_ROOT}/pink ${NOISE_ROOT}/brown ${NOISE_ROOT}/hum ${NOISE_ROOT}/traffic ${NOISE_ROOT}/cafe"
NOISE_UNSEEN_DIRS="${NOISE_ROOT}/babble"
