"""Datasets, self-supervised losses, the shared stage runner, the trainers (4-stage SSL, Shelf, detection route) and evaluation metrics."""
