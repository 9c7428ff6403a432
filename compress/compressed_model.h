// A compressed model as `adze compress` wrote it, read back: what exporters, verify and later stages start from.
//
//   DIR/model.pt       TorchScript: decoded weights, activation fake-quant (as simulated); its graph takes any
//                      batch size where the front-end found the model batch-generic (batch_symbolic.h)
//   DIR/model.json     the input spec
//   DIR/plan.json      the plan as applied, one full config per layer
//   DIR/encodings.pt   the Encodings (codes, scales, zero points, masks, permutations)
//   DIR/report.json    metrics and sizes (optional here)
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "compress/encoding.h"
#include "compress/plan.h"
#include "model/layer_table.h"
#include "model/model.h"

namespace adze {

struct CompressedModel {
  std::string dir;
  Model model;
  LayerTable table;
  ResolvedPlan plan;
  std::map<std::string, Encoding> encodings;  ///< by layer name
  nlohmann::json report;                      ///< null when DIR has no report.json
};

/// Writes DIR all or nothing (Error(kIo) when it exists or cannot be written): the files above and
/// report.md. `source` is recorded in model.json as where the model came from.
void save_compressed(const Model& model, const ResolvedPlan& plan, const std::map<std::string, Encoding>& encodings,
                     const nlohmann::ordered_json& report, const std::string& source, const std::string& dir);

/// Reads DIR and checks that its parts agree: every Encoding names a layer of the model, carries that layer's
/// planned config, and decodes bit for bit to the weight model.pt holds. Error(kIo) naming the file for a
/// missing or unreadable part, Error(kInvalidArgument) naming the layer for parts that disagree.
/// The model is traced at `batch` (its forward pads or splits other batch sizes to it); a model.pt written from a
/// batch-specialised graph runs at the batch size it was compressed with only.
CompressedModel load_compressed(const std::string& dir, int64_t batch = 1);

}  // namespace adze
