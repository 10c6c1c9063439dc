"""Datasets, self-supervised losses, the 4-stage trainer and evaluation metrics."""
