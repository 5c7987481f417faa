"""Noise simulation: noise pools split into disjoint train/dev/test pools, mixing\nat a target SNR (recipe stage 2)."""
