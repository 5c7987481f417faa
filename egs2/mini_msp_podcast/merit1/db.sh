# Locations of the mini recipe's generated corpus and noise (stage 1 writes them).
MSP_PODCAST=${MSP_PODCAST:-downloads/mini_msp_podcast}
NOISE_ROOT=${NOISE_ROOT:-downloads/mini_noise}
# babble is held out: the "unseen" test noise.
NOISE_SEEN_DIRS="${NOISE_ROOT}/white ${NOISE_ROOT}/pink ${NOISE_ROOT}/brown ${NOISE_ROOT}/hum ${NOISE_ROOT}/traffic ${NOISE_ROOT}/cafe"
NOISE_UNSEEN_DIRS="${NOISE_ROOT}/babble"
# Room impulse responses (stage 1 generates them, local/make_mini_rir.py): the
# corridor, a room shape no training room has, is held out as the "unseen" rooms.
RIR_ROOT=${RIR_ROOT:-downloads/mini_rir}
RIR_SEEN_DIRS="${RIR_ROOT}/office ${RIR_ROOT}/living ${RIR_ROOT}/classroom"
RIR_UNSEEN_DIRS="${RIR_ROOT}/corridor"
