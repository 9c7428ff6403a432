// The report of a compression run: metrics before and after, honest sizes, per-layer figures, pass timings.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compress/pass.h"

namespace adze {

/// {"metrics": {"before", "after"}, "size": {"original_bytes", "compressed_bytes", "ratio"},
///  "layers": [{"name", "weight_bits", "nm", "sparsity", "sqnr_db", "bits", ...}],
///  "passes": [{"name", "seconds", "phases" (where a pass timed its parts: {phase: seconds})}], "notes": [...]}.
/// original_bytes counts every parameter at fp32; compressed_bytes counts encoded layers by encoded_bits() and
/// every other parameter (biases, norms, unencoded layers) at fp32. sqnr_db compares each
/// layer's decoded weight with the float weight it was projected from (the latent weight after fine-tuning,
/// else the weight before compression; null when they are equal).
nlohmann::ordered_json make_report(const CompressionContext& context, const std::vector<PassRecord>& passes);

/// The same report as Markdown, for people.
std::string report_markdown(const nlohmann::ordered_json& report);

}  // namespace adze
