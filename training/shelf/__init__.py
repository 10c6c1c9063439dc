"""Shelf from 2D detections: data source, root/pose-net trainers (SSL and synthetic-only), evaluation."""
