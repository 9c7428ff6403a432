// The time a model spends between its layers in the packed runtime — pooling, flattening, residual adds, layer
// norms, attention's softmax, each an op of its own — for latency searches priced by the measured cost model,
// whose per-layer costs leave it out. On a small model it is a quarter of the whole (fmnist-cnn, one thread:
// 16 of 65 µs).
//
// Measured once per search: the model with 8-bit weights (a weight-only plan, so no layer changes what runs
// between the layers) exported to a packed file at the search's batch, profiled, and the times of its ops that
// compute no layer summed. A plan's layers change it little: a calibrated activation quantization folds
// into the layer before it.
#pragma once

#include <cstdint>
#include <string>

#include "model/model.h"

namespace adze {

/// Seconds per call of the ops between the layers of the model at `model_path`, at `batch` samples: the median
/// of five profiles' means, `runs` profiled runs in all; measured once per model file, input and batch on this
/// machine (hardware/host_timings.h), so that the same search prices the same every time. Error as compress and export
/// give it for a model the packed runtime cannot run.
double seconds_between_layers(const std::string& model_path, const InputSpec& input, int64_t batch, int runs);

}  // namespace adze
