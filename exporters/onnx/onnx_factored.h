// The ONNX form of a decomposed layer (compress/decompose.h): its factor chain, so that ONNX Runtime computes
// what the factors cost rather than the dense product.
//
//   lowrank, linear        x·Aᵀ then ·Bᵀ: two matrix products, each in the weight-only integer forms of
//                          onnx_layers.h where the options allow (MatMulNBits, DynamicQuantizeMatMul), else fp32
//   lowrank, convolution   a kh×kw Conv to r channels (the first factor), then a 1×1 Conv (+ bias); fp32 factors
//   monarch, linear        Reshape [..., b, 1, K/b] → MatMul with the first factor as [b, K/b, b] → Reshape and
//                          Transpose to [..., b, 1, b] → MatMul with the second as [b, b, C/b] → Reshape [..., C];
//                          fp32 factors
//   smartdeal; monarch on  the decoded weight, dense (factored_linear returns "")
//   a 1×1 convolution
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "exporters/onnx/onnx_builder.h"

namespace adze {

/// x·Wᵀ of a decomposed weight as its factor chain, `x_sizes` the traced shape of x; "" when the decomposition
/// goes out dense.
std::string factored_linear(OnnxBuilder& b, const std::string& x, const std::string& name, const Encoding& e,
                            const std::vector<int64_t>& x_sizes);

/// A lowrank convolution as two Convs; `bias` is "" when there is none.
std::string factored_convolution(OnnxBuilder& b, const std::string& x, const std::string& name, const Encoding& e,
                                 const std::vector<int64_t>& stride, const std::vector<int64_t>& pad,
                                 const std::vector<int64_t>& dilation, const std::string& bias);

}  // namespace adze
