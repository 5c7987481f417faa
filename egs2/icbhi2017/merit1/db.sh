# Corpus and noise locations (edit for your site).
# ICBHI 2017 Respiratory Sound Database (bhichallenge.med.auth.gr/ICBHI_2017_Challenge:
# ICBHI_final_database.zip, ICBHI_challenge_train_test.txt and
# ICBHI_Challenge_demographic_information.txt); stage 1 (local/icbhi_data.py) reads
#   ${ICBHI}/ICBHI_final_database/<patient>_<rec>_<location>_<mode>_<device>.wav
#       920 recordings of 126 patients (101-226), 10-90 s, at 4000, 10000 or
#       44100 Hz; e.g. ICBHI_final_database/101_1b1_Al_sc_Meditron.wav
#   ${ICBHI}/ICBHI_final_database/<same stem>.txt
#       one line "start<TAB>end<TAB>crackles<TAB>wheezes" per respiratory cycle
#       (seconds, 0/1 flags): 6898 cycles in all
#   ${ICBHI_SPLIT_FILE} (default ${ICBHI}/ICBHI_challenge_train_test.txt)
#       the official split, "<recording stem><TAB>train|test" per recording
#   ${ICBHI}/ICBHI_Challenge_demographic_information.txt (optional: gives utt2gender)
#       "patient<TAB>age<TAB>sex<TAB>adult BMI<TAB>child weight<TAB>child height"
# (the two metadata files may also sit inside ICBHI_final_database/). Nothing else
# of the release (events.zip, the diagnosis file) is used. Set ICBHI in the
# environment to override (the tests point it at a miniature:
# local/make_mini_icbhi.py).
ICBHI=${ICBHI:-/path/to/ICBHI}
ICBHI_SPLIT_FILE=${ICBHI_SPLIT_FILE:-${ICBHI}/ICBHI_challenge_train_test.txt}
# Noise directories split into disjoint train/dev/test pools ("seen" noise), and
# directories used only for the "unseen" test set. For auscultation, clinical
# environments: hospital ambient noise (wards, corridors, waiting rooms; e.g. the
# "Hospital ambient noise" set of 5 s chunks at 44.1 kHz), monitor and ventilator
# alarms, stethoscope handling and friction, and clinic chatter (speech babble).
# Keep breathing, coughing, snoring and heart-sound classes out of them (e.g. ESC-50's
# breathing/coughing/snoring): they are what the classifier listens to.
NOISE_SEEN_DIRS=${NOISE_SEEN_DIRS:-"/path/to/noise/hospital_ambient /path/to/noise/stethoscope_handling"}
NOISE_UNSEEN_DIRS=${NOISE_UNSEEN_DIRS:-"/path/to/noise/clinic_babble"}
# Room impulse responses for stage 2's reverberation (empty: none; a contact
# stethoscope hears little of the room, so the default): directories of RIR wavs, one
# room type each, split into disjoint train/dev/test pools ("seen" rooms), and room
# types used only for the unseen-rooms test sets; e.g. OpenSLR 28's simulated RIRs:
#   RIR_SEEN_DIRS="/path/to/RIRS_NOISES/simulated_rirs/smallroom /path/to/RIRS_NOISES/simulated_rirs/mediumroom"
#   RIR_UNSEEN_DIRS="/path/to/RIRS_NOISES/simulated_rirs/largeroom"
RIR_SEEN_DIRS=${RIR_SEEN_DIRS:-""}
RIR_UNSEEN_DIRS=${RIR_UNSEEN_DIRS:-""}
