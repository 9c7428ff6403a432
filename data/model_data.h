// A model's data: its sample input resolved from a flag or its card, a dataset cut and checked to fit it, and
// the identity of such a measurement for cache keys. Shared by every driver (compress, verify, search) and the CLI.
#pragma once

#include <cstdint>
#include <string>

#include "data/dataset.h"
#include "model/model.h"

namespace adze {

/// The sample input: `shape_flag` (with `dtype_flag`) when given, else the card beside the model.
InputSpec resolve_input_spec(const std::string& model_path, const std::string& shape_flag,
                             const std::string& dtype_flag);

/// The data a model is evaluated on: text cut into windows of the model's sequence length; the per-sample
/// shape checked against the model's input (Error naming both); `input.shape[0]` set to the evaluation batch
/// (`batch_size`, else 256 images or 32 windows, at most the data size).
Dataset load_data_for_model(const std::string& model_path, InputSpec& input, const std::string& spec,
                            const std::string& split, int64_t limit, int64_t batch_size);

/// What a measurement on (model file, input, data) depends on, for cache keys: the model file's content hash,
/// the input spec, the data spec, split and sample count.
std::string data_identity(const std::string& model_path, const InputSpec& input, const std::string& spec,
                          const std::string& split, int64_t samples);

}  // namespace adze
