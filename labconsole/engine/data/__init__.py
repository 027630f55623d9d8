"""Datasets: the embedded synthetic default, real Waterbirds/CelebA, and Paper B's digits."""
