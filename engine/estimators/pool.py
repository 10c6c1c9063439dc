"""Views of a frameset through the estimator in parallel: ``workers`` single-thread sessions.

ONNX Runtime releases the GIL, so on a 2-core CPU two one-thread sessions, each taking every other
view, use both cores with no intra-op synchronisation (benchmarks/bench_estimator.py measures it).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Sequence

import numpy as np

from engine.estimators.base import Estimator, EstimatorConfig, People2D, build_estimator


class EstimatorPool:
    """``workers`` estimators of one config (1 thread each) sharing the views of a frameset.

    Args:
        config: the estimator config (its ``threads`` is replaced by 1 per worker when workers > 1).
        workers: parallel sessions (1: a single estimator with ``config.threads`` threads).
    """

    def __init__(self, config: EstimatorConfig, workers: int = 2):
        self.workers = max(1, int(workers))
        cfg = replace(config, threads=1) if self.workers > 1 else config
        self.estimators: list[Estimator] = [build_estimator(cfg) for _ in range(self.workers)]
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="estimator") if self.workers > 1 else None
        self.config = config

    def detect(self, images: Sequence[np.ndarray], bgr: bool = True) -> list[People2D]:
        """Per image its people (same order as ``images``)."""
        if self._pool is None or len(images) < 2:
            return self.estimators[0].detect(images, bgr)
        parts = [list(range(w, len(images), self.workers)) for w in range(self.workers)]
        futures = [
            self._pool.submit(self.estimators[w].detect, [images[i] for i in idx], bgr)
            for w, idx in enumerate(parts)
            if idx
        ]
        out: list[People2D | None] = [None] * len(images)
        for idx, fut in zip([p for p in parts if p], futures):
            for i, people in zip(idx, fut.result()):
                out[i] = people
        return out  # type: ignore[return-value]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
