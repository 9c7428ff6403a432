// The ONNX form of a convolution or linear layer, chosen for what ONNX Runtime runs fastest:
//
//   weights and input quantized (W8A8)  QDQ as ORT's fusion rules expect: the input's DequantizeLinear, the
//                                       weight's codes + DequantizeLinear, and an int32 bias + DequantizeLinear
//                                       (scale = input scale · weight scale), so that Conv becomes QLinearConv
//                                       when a QuantizeLinear follows, and a linear layer becomes QGemm (Gemm,
//                                       transB = 1; rows of a higher rank through it as [rows, K] between
//                                       Reshapes, a traced matmul + bias add with the bias inside); a 1-D input
//                                       is MatMul on [K, N] codes (MatMulIntegerToFloat) plus Add
//   weights only, linear, ≤ 2 rows     com.microsoft MatMulNBits (4-bit blocks for 2–4-bit weights, 8-bit
//                                       blocks above; per-channel scales repeated over blocks, which is exact),
//                                       int8 compute (accuracy_level 4): a matrix-vector product reads 1/8 of
//                                       the fp32 weight's bytes
//   weights only, linear, more rows     DynamicQuantizeLinear → MatMulInteger → Cast → Mul, which ORT fuses into
//                                       DynamicQuantizeMatMul: int8 activations quantized per call, as adze's
//                                       own runtime does by default. Measured with ORT 1.30 on an AVX-512 VNNI
//                                       CPU, 1 thread, three 1024² int4 layers: MatMulNBits 3.2× fp32 at 1 row,
//                                       1.65× at 4 rows, 1.05× at 16; this form 2.35×, 2.0×, 2.96×. ORT takes
//                                       one range for all rows; with activations "dynamic" (kPerRow) each row is
//                                       divided by its largest magnitude first (Abs, ReduceMax, Max, Div; once
//                                       per tensor) and the product multiplied back: each row then has its own
//                                       range, as in adze's runtime (fortune-gpt, 2:4 + INT4, agreement with the
//                                       simulation 98.94% → 99.21%, at 1.75× → 1.37× ORT fp32)
//   weights only, convolution; float;   the decoded float32 weight: ORT's fp32 kernels, no per-call decode
//   with activations "float"
//   decomposed (compress/decompose.h)  the factor chain (onnx_factored.h)
//
// Codes are stored signed (s8) for ort_target "vnni" and unsigned (u8, the same values + 128) for "portable".
#pragma once

#include <cstdint>
#include <string>

#include "exporters/onnx/onnx_builder.h"

namespace torch {
namespace jit {
struct Node;
}  // namespace jit
}  // namespace torch

namespace adze {

/// aten::_convolution (not transposed) → Conv.
std::string onnx_convolution(OnnxBuilder& b, const torch::jit::Node* n);
/// aten::linear → Gemm, MatMul (+ Add) or MatMulNBits.
std::string onnx_linear(OnnxBuilder& b, const torch::jit::Node* n);
/// aten::matmul / aten::mm: x·t(W) of a parameter W is a linear layer without bias (as onnx_linear), any other
/// product a MatMul.
std::string onnx_matmul(OnnxBuilder& b, const torch::jit::Node* n);
/// aten::fake_quantize_per_tensor_affine of an activation (8-bit asymmetric) → QuantizeLinear → DequantizeLinear.
std::string onnx_activation_fake_quant(OnnxBuilder& b, const torch::jit::Node* n);

/// x·eᵀ for a plain Encoding `e` of a 2-D weight [N, K] (a decomposed layer's factor), `rows` rows per call: the
/// weight-only integer forms above where the options allow, else MatMul on the decoded fp32 weight.
std::string factor_matmul(OnnxBuilder& b, const std::string& x, const std::string& name, const Encoding& e,
                          int64_t rows);

/// Up to this many rows per call, a weight-only linear layer goes out as MatMulNBits.
constexpr int64_t kMaxNBitsRows = 2;

/// The block size MatMulNBits gets for a reduction of length k: 16 for k ≤ 16, else 32.
int64_t matmul_nbits_block(int64_t k);

}  // namespace adze
