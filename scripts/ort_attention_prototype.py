#!/usr/bin/python3
"""Two ONNX forms of the encoder fixture's architecture, to measure what a fused attention op is worth in ONNX
Runtime before the exporter writes one (issue "ONNX exports that ONNX Runtime runs faster").

Usage: scripts/ort_attention_prototype.py OUT_DIR
Writes OUT_DIR/plain.onnx and OUT_DIR/fused.onnx: two nn.TransformerEncoderLayer (d_model 32, 4 heads, feed-forward
64, ReLU, post-norm) over 16 tokens, a mean over the tokens and a 10-class head, as tests/data/transformer_traced.pt
has them, with random fp32 weights (seed 0). plain.onnx computes attention with standard ops (MatMul, Reshape,
Transpose, Split, Softmax); fused.onnx with com.microsoft's Attention (the q, k, v projections and the attention in
one node). Time them beside PyTorch's own export of the fixture with
`adze bench MODEL.onnx OUT_DIR/plain.onnx OUT_DIR/fused.onnx --threads 1 --runs 500 --rounds 4`.
Needs python3-onnx.
"""
import os
import sys

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:
    print(f"ort_attention_prototype: {e} (Debian's python3-onnx, run by /usr/bin/python3)", file=sys.stderr)
    sys.exit(2)

D, HEADS, FF, TOKENS, LAYERS = 32, 4, 64, 16, 2


def build(fused, rng):
    nodes, inits = [], []

    def const(name, value, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def weight(name, *shape):
        return const(name, rng.standard_normal(shape) * 0.1)

    def node(op, inputs, output, **attrs):
        nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    x = "input"
    for layer in range(LAYERS):
        p = f"l{layer}_"
        wqkv, bqkv = weight(p + "wqkv", D, 3 * D), weight(p + "bqkv", 3 * D)
        if fused:
            ctx = node("Attention", [x, wqkv, bqkv], p + "ctx", domain="com.microsoft", num_heads=HEADS)
        else:
            qkv = node("Add", [node("MatMul", [x, wqkv], p + "qkv0"), bqkv], p + "qkv")
            heads = node("Reshape", [qkv, const(p + "heads", [1, TOKENS, 3, HEADS, D // HEADS], np.int64)], p + "r")
            t = node("Transpose", [heads], p + "t", perm=[2, 0, 3, 1, 4])
            nodes.append(helper.make_node("Split", [t, const(p + "thirds", [1, 1, 1], np.int64)],
                                          [p + "q5", p + "k5", p + "v5"], axis=0))
            axis = const(p + "axis0", [0], np.int64)
            q, k, v = (node("Squeeze", [p + n + "5", axis], p + n) for n in "qkv")
            s = node("Mul", [node("MatMul", [q, node("Transpose", [k], p + "kt", perm=[0, 1, 3, 2])], p + "s0"),
                             const(p + "scale", 1 / np.sqrt(D // HEADS))], p + "s")
            o = node("MatMul", [node("Softmax", [s], p + "a", axis=-1), v], p + "o")
            ctx = node("Reshape", [node("Transpose", [o], p + "ot", perm=[0, 2, 1, 3]),
                                   const(p + "tokens", [1, TOKENS, D], np.int64)], p + "ctx")
        proj = node("Add", [node("MatMul", [ctx, weight(p + "wo", D, D)], p + "pr0"), weight(p + "bo", D)], p + "pr")
        n1 = node("LayerNormalization", [node("Add", [x, proj], p + "res1"), const(p + "g1", np.ones(D)),
                                         const(p + "b1", np.zeros(D))], p + "n1", axis=-1, epsilon=1e-5)
        f = node("Relu", [node("Add", [node("MatMul", [n1, weight(p + "w1", D, FF)], p + "f0"),
                                       weight(p + "bf1", FF)], p + "f1")], p + "f2")
        f = node("Add", [node("MatMul", [f, weight(p + "w2", FF, D)], p + "f3"), weight(p + "bf2", D)], p + "f4")
        x = node("LayerNormalization", [node("Add", [n1, f], p + "res2"), const(p + "g2", np.ones(D)),
                                        const(p + "b2", np.zeros(D))], p + "out", axis=-1, epsilon=1e-5)
    mean = node("ReduceMean", [x], "mean", axes=[1], keepdims=0)
    node("Gemm", [mean, weight("head_w", 10, D), const("head_b", np.zeros(10))], "output", transB=1)
    graph = helper.make_graph(nodes, "encoder", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, TOKENS, D])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    out = sys.argv[1]
    try:
        os.makedirs(out, exist_ok=True)
        for fused, name in ((False, "plain.onnx"), (True, "fused.onnx")):
            path = os.path.join(out, name)
            onnx.save(build(fused, np.random.default_rng(0)), path + ".tmp")
            os.replace(path + ".tmp", path)  # all or nothing
            print(path)
    except OSError as e:  # one line, exit 2: an output directory that cannot be made or written
        print(f"ort_attention_prototype: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
