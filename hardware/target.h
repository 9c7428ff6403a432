// Target: a piece of hardware described as data (configs/targets/*.json, schema "adze.target.v1"), every figure
// with the source it comes from. Cost models (cost_model.h) read targets; the search reads which configs a target
// supports.
//
// Units are in the field names: macs_per_s (multiply-accumulates per second, per operand precision),
// bytes_per_s, pj_per_byte, pj_per_mac, layer_overhead_s. A figure is {"value": number, "source": "text"};
// a source that begins with "assumption" marks a figure adze assumed rather than read somewhere.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace adze {

struct LayerConfig;

struct Figure {
  double value = 0;
  std::string source;
  bool assumed() const { return source.rfind("assumption", 0) == 0; }
};

/// One level of the memory hierarchy, outermost (DRAM, flash) first.
struct MemoryLevel {
  std::string name;
  Figure bytes, bytes_per_s, pj_per_byte;
};

struct Target {
  std::string name, description, kind;  ///< kind: gpu, cpu, npu, mcu, fpga
  /// The precision float layers compute in ("fp32", "fp16"), or "none" when the target has no float path.
  std::string float_precision;
  std::vector<int> weight_bits;                  ///< stored weight widths it runs (16/32: float)
  std::vector<int> act_bits;                     ///< activation widths it runs (0: float activations)
  std::map<std::string, Figure> macs_per_s;      ///< per precision: fp32, fp16, int4, int8, int16
  std::map<std::string, Figure> nm_speedup;      ///< compute speedup per supported N:M pattern ("2:4")
  std::optional<Figure> nm_flexible_efficiency;  ///< any N:M runs at efficiency × M/N (flexible hardware)
  Figure layer_overhead_s;
  std::vector<MemoryLevel> memory;
  std::map<std::string, Figure> pj_per_mac;
  std::optional<Figure> storage_bytes_per_s;  ///< where models loaded on demand stream from
  std::string weights_in, activations_in;     ///< levels that must hold them (memory fit), or empty
  std::string origin;                         ///< the file it was read from, or "built-in"
  bool measured = false;                      ///< figures measured on this machine (host)

  /// The precision a layer with `config` computes in: float layers the float precision; quantized activations
  /// the narrowest integer precision this target has that holds both operands. Empty when it has none.
  std::string compute_precision(const LayerConfig& config) const;
  /// Why the target cannot run `config`, or empty when it can.
  std::string unsupported(const LayerConfig& config) const;
  /// The compute speedup the target gives `config`'s N:M pattern (1 when none).
  double nm_compute_speedup(const LayerConfig& config) const;
  const MemoryLevel* level(const std::string& name) const;
};

/// Parses and validates a target; Error(kInvalidConfig) naming `where` and the field for anything wrong: an
/// unknown or missing field, a figure without a source, a value that is not a positive finite number.
Target parse_target(const nlohmann::json& j, const std::string& where);

/// A built-in target by name (configs/targets, compiled in), "host" (measured by `adze target calibrate host`,
/// read from the cache), or a path to a JSON file. Error(kInvalidConfig) for an unknown name listing the known.
Target load_target(const std::string& name_or_path);

/// The names of the built-in targets, and host.
std::vector<std::string> target_names();

/// The target as the JSON it was read from (figures with sources).
nlohmann::json to_json(const Target& t);

}  // namespace adze
