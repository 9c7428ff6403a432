// Storing Encodings, and counting what they honestly cost.
//
// encodings.pt is a torch.save-compatible pickle (torch::pickle_save; Python's torch.load reads it): a dict
// layer name -> {"shape", "order", "config" (JSON text), "codes", "scale", "zero_point", "mask", "values",
// "permutation"}, tensor fields present only where defined; a decomposed layer has "factors" instead, a list
// of such dicts. Loading gives bit-identical Encodings.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "compress/encoding.h"

namespace adze {

void save_encodings(const std::map<std::string, Encoding>& encodings, const std::string& path);
/// Throws Error(kIo) naming the file and the layer/field for anything missing or malformed.
std::map<std::string, Encoding> load_encodings(const std::string& path);

/// Storage of one encoded weight, in bits:
///  codes: kept weights × weight_bits (16/32 for float weights);
///  scales: 32 bits per quantization row; zero points: weight_bits per row when asymmetric;
///  index: N:M alone stores ceil(log2 M) bits per kept weight (2:4 -> 2 bits, as sparse tensor cores do);
///         any unstructured sparsity stores a 1-bit-per-weight bitmap instead; a channel permutation adds
///         ceil(log2 run) bits per channel of the run.
///  A decomposed weight stores its factors: the sum of theirs.
struct EncodedBits {
  int64_t codes = 0, scales = 0, zero_points = 0, index = 0;
  int64_t total() const { return codes + scales + zero_points + index; }
  EncodedBits& operator+=(const EncodedBits& o) {
    codes += o.codes;
    scales += o.scales;
    zero_points += o.zero_points;
    index += o.index;
    return *this;
  }
};
EncodedBits encoded_bits(const Encoding& e);
/// The same storage for `config` applied to `layer`, without encoding it (cost models and the search price
/// configs this way): equal to encoded_bits() of the projection's result, except that unstructured sparsity
/// counts round(kept · (1 − sparsity)) kept weights where the real mask may keep a few more or fewer.
EncodedBits planned_bits(const Layer& layer, const LayerConfig& config);
/// The bytes `layer` stores with `config`: planned_bits() of its weight plus its fp32 bias.
double planned_layer_bytes(const Layer& layer, const LayerConfig& config);

}  // namespace adze
