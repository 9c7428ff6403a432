// Exporters: each writes one deployable format and declares up front, as a Contract, what that format can
// represent and what its target runs faster. `adze export` checks a compressed model against the contract
// before any work and lists every violation; the search (a later stage) honours the same contracts.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "compress/compressed_model.h"
#include "core/registry.h"

namespace adze {

struct Contract {
  std::vector<int> weight_bits;            ///< quantized widths it stores (2..8); 32 means float layers are fine
  std::vector<Granularity> granularities;  ///< of weight scales
  bool asymmetric_weights = false;         ///< weight zero points other than 0
  std::vector<Quantizer> quantizers = {Quantizer::kUniform};  ///< weight schemes (compress/scheme.h)
  std::vector<int> act_bits;  ///< activation fake-quant widths (8, 16); 0 means float activations are fine
  std::vector<NMPattern> nm;  ///< N:M patterns it stores; empty with any_nm false: dense only
  bool any_nm = false;        ///< every N:M pattern
  bool unstructured = false;  ///< an unstructured sparsity ratio
  bool permutation = false;   ///< N:M channel permutations
  std::vector<Decomposition> decompositions;  ///< block decompositions it stores (compress/decompose.h); empty: none
  std::vector<std::string> ops;               ///< graph ops it translates ("aten::linear"); empty: any
  std::vector<int> accelerated_weight_bits;   ///< what its target computes faster than fp32
  std::vector<NMPattern> accelerated_nm;
  std::string notes;  ///< one line on what "accelerated" means for this target
};

/// One way a compressed model falls outside a contract.
struct Violation {
  std::string layer;    ///< layer name, or "" for a graph op
  std::string field;    ///< "weight_bits", "nm", "op", ...
  std::string found;    ///< what the model has
  std::string allowed;  ///< what the format allows
  std::string to_string() const;
};

/// Every way one layer's config falls outside `contract` (the search filters its options with this).
std::vector<Violation> check_layer_config(const Contract& contract, const std::string& layer,
                                          const LayerConfig& config);

/// Every violation of `contract` by the compressed model's plan and graph, in layer order then ops by name.
std::vector<Violation> check_contract(const Contract& contract, const CompressedModel& model);

/// What a contract allows, in words per field, for `adze exporters` (and its --json).
nlohmann::json to_json(const Contract& contract);

class Runner;
struct RunnerOptions;

class Exporter {
 public:
  virtual ~Exporter() = default;
  virtual const Contract& contract() const = 0;
  /// Writes `path` (a file or a directory, per format) atomically; the model has passed check_contract.
  virtual void write(const CompressedModel& model, const std::string& path) const = 0;
  /// Whether `path` is a file (or directory) of this format, by its name or contents' names.
  virtual bool recognizes(const std::string& path) const = 0;
  /// The form of its files, for messages (".adze", "a directory with model.h").
  virtual std::string file_form() const = 0;
  /// Opens a file of this format in its real runtime (exporters/runner.h).
  virtual std::unique_ptr<Runner> open(const std::string& path, const RunnerOptions& options) const = 0;
  /// What a person wants to know about a file just written, beyond its size (the c-header's flash and SRAM).
  virtual std::vector<std::string> written_notes(const std::string& path) const { return {}; }
};

/// The built-in exporters (exporters/register.cc).
const Registry<Exporter>& exporter_registry();

/// Checks the contract (Error(kUnsupported) listing every violation, one per line, before any work) and
/// writes. Error(kIo) when `path` exists or cannot be written; nothing is left behind on failure.
void export_model(const CompressedModel& model, const std::string& format, const nlohmann::json& options,
                  const std::string& path);

}  // namespace adze
