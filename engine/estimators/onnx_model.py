"""One ONNX model file behind a checked ONNX Runtime session (clear errors for missing/wrong files)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from engine.errors import CheckpointError

REBUILD_HINT = (
    "restore it with `git checkout -- models/` or rebuild it with `bash scripts/build_movenet_onnx.sh` "
    "(see models/NOTICE-movenet.md)"
)


def _compatible(actual: Sequence, expected: Sequence[int | None]) -> bool:
    """Same rank, and every axis fixed on both sides agrees (symbolic axes match anything)."""
    return len(actual) == len(expected) and all(
        e is None or not isinstance(a, int) or a == e for a, e in zip(actual, expected)
    )


class OnnxModel:
    """A single-input, single-output ONNX model checked against the shapes its caller expects.

    Args:
        path: the .onnx file.
        input_shape, output_shape: expected shapes (None = any size on that axis).
        threads: intra-op threads (0 = ONNX Runtime's default).
        what: the model's name in error messages.
    Raises:
        CheckpointError: the file is missing, unreadable/truncated, or another model (names file and fix).
    """

    def __init__(
        self,
        path: Path,
        input_shape: Sequence[int | None],
        output_shape: Sequence[int | None],
        threads: int = 0,
        what: str = "model",
    ):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{what} model file '{path}' is missing: {REBUILD_HINT}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
            raise CheckpointError(
                f"{what} model file '{path}' cannot be read ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:160]}); it is truncated or not an ONNX model: "
                f"{REBUILD_HINT}"
            ) from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if not (
            len(inputs) == 1
            and len(outputs) == 1
            and _compatible(inputs[0].shape, input_shape)
            and _compatible(outputs[0].shape, output_shape)
        ):
            raise CheckpointError(
                f"'{path}' is not a {what} model: expected input {tuple(input_shape)} and output "
                f"{tuple(output_shape)}, found inputs {[tuple(i.shape) for i in inputs]} and outputs "
                f"{[tuple(o.shape) for o in outputs]}: point the estimator at the right file or {REBUILD_HINT}"
            )
        self.input_name = inputs[0].name
        self.path = path

    def run(self, x: np.ndarray) -> np.ndarray:
        """The model's output for one input batch."""
        return self.session.run(None, {self.input_name: x})[0]
