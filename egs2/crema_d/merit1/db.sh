# Corpus and noise locations (edit for your site).
# CREMA-D (github.com/CheyneyComputerScience/CREMA-D; `git lfs clone`, the audio
# is in Git LFS): local/crema_d_data.py reads
#   ${CREMA_D}/AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav
#       7442 files, 16 kHz mono 16-bit; actor 1001-1091, sentence IEO TIE IOM IWW
#       TAI MTI IWL ITH DFA ITS TSI WSI, emotion ANG DIS FEA HAP NEU SAD, level
#       LO MD HI XX (e.g. AudioWAV/1001_DFA_ANG_XX.wav)
#   ${CREMA_D}/VideoDemographics.csv (optional: "ActorID","Age","Sex","Race",
#       "Ethnicity"; gives utt2gender and a sex-balanced actor split)
# Nothing else of the release (AudioMP3/, VideoFlash/, processedResults/) is used.
CREMA_D=${CREMA_D:-/path/to/CREMA-D}
# EmoBox (github.com/emo-box/EmoBox) published folds instead of this recipe's own
# split: its data/cremad folder (fold_<n>/cremad_{train,test}_fold_<n>.jsonl,
# label_map.json, data.seg.wrd.stm; wav paths downloads/cremad/... are read under
# the corpus root above). Empty: the recipe's split; set: stage 1 prepares EmoBox's
# fold 1 (local/data.sh --emobox_dir DIR does the same for one run).
EMOBOX_CREMA_D=${EMOBOX_CREMA_D:-}
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
