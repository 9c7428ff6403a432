#include "data/model_data.h"

#include <algorithm>

#include "core/error.h"
#include "core/hash.h"
#include "model/frontend.h"

namespace adze {

InputSpec resolve_input_spec(const std::string& model_path, const std::string& shape_flag,
                             const std::string& dtype_flag) {
  if (!shape_flag.empty()) {
    InputSpec spec{parse_shape(shape_flag), dtype_flag.empty() ? "float32" : dtype_flag};
    parse_dtype(spec.dtype);
    return spec;
  }
  if (auto spec = read_input_spec_beside(model_path)) {
    if (!dtype_flag.empty()) spec->dtype = dtype_flag;
    return *spec;
  }
  throw Error(ErrorKind::kInvalidArgument, "failed to trace model '" + model_path +
                                               "': give its input with --input-shape (e.g. 1x3x224x224); no card '" +
                                               card_path_for(model_path) + "' records it");
}

Dataset load_data_for_model(const std::string& model_path, InputSpec& input, const std::string& spec,
                            const std::string& split, int64_t limit, int64_t batch_size) {
  DataOptions options;
  options.split = split;
  options.limit = limit;
  if (input.shape.size() == 2) options.seq_len = input.shape[1];
  Dataset data = load_dataset(spec, options);
  const Shape per_sample(input.shape.begin() + 1, input.shape.end());
  const Shape data_per_sample(data.inputs.sizes().begin() + 1, data.inputs.sizes().end());
  if (per_sample != data_per_sample)
    throw Error(ErrorKind::kInvalidArgument, "failed to evaluate '" + model_path + "' on '" + spec +
                                                 "': the model takes samples of shape " + shape_to_string(per_sample) +
                                                 " (input " + shape_to_string(input.shape) + "), the data has " +
                                                 shape_to_string(data_per_sample));
  const int64_t fallback = data.task == Task::kLanguageModel ? 32 : 256;
  input.shape[0] = std::min(data.size(), batch_size > 0 ? batch_size : fallback);
  return data;
}

std::string data_identity(const std::string& model_path, const InputSpec& input, const std::string& spec,
                          const std::string& split, int64_t samples) {
  return ContentHash().add_file(model_path).hex() + "|" + shape_to_string(input.shape) + " " + input.dtype + "|" +
         spec + "|" + split + "|" + std::to_string(samples);
}

}  // namespace adze
