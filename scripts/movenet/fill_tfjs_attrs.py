"""Fill the op attributes a TF.js graph model omits, so tf2onnx can import it (build step only).

TF.js converters drop attributes that equal their op's default and `_FusedConv2D`'s `TArgs`;
TensorFlow's graph importer (used by tf2onnx) requires them. Usage: fill_tfjs_attrs.py IN.json OUT.json
"""

import json
import sys

from google.protobuf import json_format
from tensorflow.python.framework import op_def_registry


def main(src: str, dst: str) -> None:
    model = json.load(open(src))
    unknown = []
    for node in model["modelTopology"]["node"]:
        op_def = op_def_registry.get(node["op"]) or op_def_registry.get("_" + node["op"])
        if op_def is None:
            unknown.append(node["op"])
            continue
        attrs = node.setdefault("attr", {})
        for a in op_def.attr:
            if a.name in attrs:
                continue
            if a.HasField("default_value"):
                attrs[a.name] = json_format.MessageToDict(a.default_value)
            elif a.name == "TArgs":  # one float per fused argument (bias, bn offset, ...)
                attrs[a.name] = {"list": {"type": ["DT_FLOAT"] * int(attrs.get("num_args", {}).get("i", "0"))}}
            else:
                unknown.append(f"{node['op']}.{a.name}")
    if unknown:
        raise SystemExit(f"cannot fill attributes: {sorted(set(unknown))}")
    json.dump(model, open(dst, "w"))


if __name__ == "__main__":
    main(*sys.argv[1:3])
