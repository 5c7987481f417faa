"""Scoring: speech-enhancement and emotion-recognition metrics, and paired
significance tests between systems (used by ``merit_score`` / ``merit_compare``)."""
