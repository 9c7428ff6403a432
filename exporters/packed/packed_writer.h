// Writing the packed format (runtime/FORMAT.md): the graph as a list of ops, the model's float tensors as they
// are, and every encoded weight packed (runtime/packed_layer.h), so that the file's size is the model's real
// compressed size. The runtime (runtime/packed_model.h) opens and runs what this writes.
#pragma once

#include <string>

#include "compress/compressed_model.h"

namespace adze {
namespace packed {

struct WriteOptions {
  /// A batch-generic file (FORMAT.md, "Batch-generic files"): every batch-dependent int constant of the graph
  /// with its a*batch + b (model/batch_symbolic.h), the input's batch marked "any". Error(kUnsupported)
  /// naming the reason when the model is batch-specialised.
  bool dynamic_batch = false;
};

/// Writes the packed file atomically. Error(kUnsupported) for what the format cannot hold (an unstructured
/// mask, a graph op without a schema); the exporter's contract catches these before any work.
void write_packed(const CompressedModel& model, const std::string& path, const WriteOptions& options = {});

}  // namespace packed
}  // namespace adze
