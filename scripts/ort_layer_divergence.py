#!/usr/bin/python3
"""Where an ONNX export's integer kernels start to differ from the graph as written, layer by layer.

Usage: scripts/ort_layer_divergence.py MODEL.onnx INPUTS.pt [N] [LEVEL_A] [LEVEL_B]

Every QuantizeLinear output of MODEL.onnx becomes a graph output too (this keeps ONNX Runtime's QDQ fusions: a
fused QLinearConv still produces that tensor), the first N (default 16) inputs of INPUTS.pt (a tensors file, as
`--data tensors:FILE` reads) run through ONNX Runtime at two graph optimization levels (default basic, the
graph as written, and all, ONNX Runtime's default, which runs QLinearConv/QLinearAdd), and each quantized tensor
is compared: the share of codes that differ and the largest difference, in graph order. Needs python3-onnx and
ONNX Runtime (scripts/install-ort.sh).
"""
import os
import subprocess
import sys
import tempfile

try:
    import onnx
    import torch
except ImportError as e:
    print(f"ort_layer_divergence: {e} (Debian's python3-onnx and python3-torch, run by /usr/bin/python3)",
          file=sys.stderr)
    sys.exit(2)


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    model, inputs = sys.argv[1], sys.argv[2]
    levels = sys.argv[4:6] if len(sys.argv) > 5 else ["basic", "all"]
    try:
        n = int(sys.argv[3]) if len(sys.argv) > 3 else 16
        if n < 1:
            raise ValueError("N must be at least 1")
        m = onnx.load(model)
        x = torch.load(inputs)["inputs"][:n].contiguous().float()
    except Exception as e:  # one line, exit 2: a missing file, a file that is not ONNX or a tensors file, a bad N
        print(f"ort_layer_divergence: {e}", file=sys.stderr)
        sys.exit(2)
    outputs = {o.name for o in m.graph.output}
    for node in m.graph.node:
        if node.op_type == "QuantizeLinear" and node.output[0] not in outputs:
            m.graph.output.append(onnx.helper.make_empty_tensor_value_info(node.output[0]))
    root = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(m, os.path.join(tmp, "taps.onnx"))
        x.numpy().tofile(os.path.join(tmp, "x.bin"))
        env = dict(os.environ)
        env.setdefault("NODE_PATH", os.path.join(root, "..", "build", "ort", "node_modules"))
        subprocess.run(["node", os.path.join(root, "ort_layer_divergence.js"), os.path.join(tmp, "taps.onnx"),
                        os.path.join(tmp, "x.bin"), "x".join(str(d) for d in x.shape)] + levels, check=True, env=env)


if __name__ == "__main__":
    main()
