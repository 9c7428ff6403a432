// Writing the packed format (runtime/FORMAT.md): the graph as a list of ops, the model's float tensors as they
// are, and every encoded weight packed (runtime/packed_layer.h), so that the file's size is the model's real
// compressed size. The runtime (runtime/packed_model.h) opens and runs what this writes.
#pragma once

#include <string>

#include "compress/compressed_model.h"

namespace adze {
namespace packed {

/// Writes the packed file atomically. Error(kUnsupported) for what the format cannot hold (an unstructured
/// mask, a graph op without a schema); the exporter's contract catches these before any work.
void write_packed(const CompressedModel& model, const std::string& path);

}  // namespace packed
}  // namespace adze
