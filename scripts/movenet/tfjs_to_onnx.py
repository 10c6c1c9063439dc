"""Convert a (filled) TF.js graph model to ONNX with tf2onnx (build step only). Usage: IN.json OUT.onnx"""

import sys

import numpy as np

np.product = np.prod  # tf2onnx 1.17's TF.js reader still calls np.product (removed in numpy 2)

from tf2onnx import convert  # noqa: E402

if __name__ == "__main__":
    src, dst = sys.argv[1:3]
    sys.argv = ["tf2onnx", "--tfjs", src, "--output", dst, "--opset", "17"]
    convert.main()
