#include "compress/encoding_io.h"

#include <torch/serialize.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>

#include "compress/decompose.h"
#include "compress/encoding.h"
#include "compress/plan.h"
#include "core/error.h"
#include "core/files.h"
#include "core/zip_bounds.h"
#include "model/layer_table.h"

namespace adze {
namespace {

c10::List<int64_t> to_list(const std::vector<int64_t>& v) { return c10::List<int64_t>(v); }

c10::impl::GenericDict to_dict(const Encoding& e) {
  c10::impl::GenericDict d(c10::StringType::get(), c10::AnyType::get());
  d.insert("shape", to_list(e.shape));
  d.insert("order", to_list(e.order));
  d.insert("config", to_json(e.config).dump());
  for (const auto& [key, t] : {std::pair<const char*, const at::Tensor*>{"codes", &e.codes},
                               {"scale", &e.scale},
                               {"zero_point", &e.zero_point},
                               {"mask", &e.mask},
                               {"values", &e.values},
                               {"permutation", &e.permutation}})
    if (t->defined()) d.insert(key, *t);
  if (!e.factors.empty()) {
    c10::impl::GenericList factors(c10::AnyType::get());
    for (const Encoding& f : e.factors) factors.push_back(to_dict(f));
    d.insert("factors", factors);
  }
  return d;
}

// `where` names the file and layer (and factor) for messages.
Encoding from_dict(const c10::IValue& value, const std::string& path, const std::string& where) {
  if (!value.isGenericDict()) throw Error(ErrorKind::kIo, where + ": expected a dict");
  auto d = value.toGenericDict();
  auto get = [&](const char* key) -> c10::IValue {
    if (!d.contains(key)) throw Error(ErrorKind::kIo, where + ": missing '" + key + "'");
    return d.at(key);
  };
  auto tensor = [&](const char* key) {
    return d.contains(key) && d.at(key).isTensor() ? d.at(key).toTensor() : at::Tensor();
  };
  Encoding e;
  try {
    e.shape = get("shape").toIntVector();
    e.order = get("order").toIntVector();
    Plan one = parse_plan(
        nlohmann::ordered_json{{"defaults", nlohmann::ordered_json::parse(get("config").toStringRef())}}, path);
    e.config = one.defaults;
  } catch (const Error& err) {
    throw Error(ErrorKind::kIo, where + ": " + err.what());
  } catch (const std::exception& err) {
    throw Error(ErrorKind::kIo, where + ": malformed field (" + first_line_of(err) + ")");
  }
  const int64_t numel = shape_numel(e.shape);
  if (e.config.decomposed()) {
    const c10::IValue factors = get("factors");
    if (!factors.isList()) throw Error(ErrorKind::kIo, where + ": 'factors' is not a list");
    const auto list = factors.toListRef();
    for (std::size_t i = 0; i < list.size(); ++i)
      e.factors.push_back(from_dict(list[i], path, where + " factor " + std::to_string(i)));
    bool fits = e.order.size() == e.shape.size() && e.factors.size() == 2;
    for (const Encoding& f : e.factors) fits = fits && !f.config.decomposed();
    try {
      fits = fits && e.decode().numel() == numel;
    } catch (const std::exception&) {
      fits = false;
    }
    if (!fits) throw Error(ErrorKind::kIo, where + ": factors do not compose to the shape " + shape_to_string(e.shape));
    return e;
  }
  e.codes = tensor("codes");
  e.scale = tensor("scale");
  e.zero_point = tensor("zero_point");
  e.mask = tensor("mask");
  e.values = tensor("values");
  e.permutation = tensor("permutation");
  const bool consistent = e.order.size() == e.shape.size() &&
                          (e.config.quantized() ? e.codes.defined() && e.codes.numel() == numel && e.scale.defined() &&
                                                      e.zero_point.defined() && e.scale.numel() == e.codes.size(0)
                                                : e.values.defined() && e.values.numel() == numel) &&
                          (!e.mask.defined() || e.mask.numel() == numel) &&
                          (!e.permutation.defined() ||
                           (e.permutation.dim() == 1 && e.permutation.scalar_type() == at::kLong &&
                            e.permutation.numel() > 0 && e.reduction() % e.permutation.numel() == 0 &&
                            torch::equal(std::get<0>(e.permutation.sort()), torch::arange(e.permutation.numel()))));
  if (!consistent) throw Error(ErrorKind::kIo, where + ": fields do not fit the shape " + shape_to_string(e.shape));
  return e;
}

}  // namespace

void save_encodings(const std::map<std::string, Encoding>& encodings, const std::string& path) {
  c10::impl::GenericDict all(c10::StringType::get(), c10::AnyType::get());
  for (const auto& [name, e] : encodings) all.insert(name, to_dict(e));
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(all));
  write_file_atomically(path, std::string(bytes.begin(), bytes.end()));
}

std::map<std::string, Encoding> load_encodings(const std::string& path) {
  const auto bytes = read_file_bytes(path);
  check_torch_save_bounds({bytes.data(), bytes.size()}, "encodings '" + path + "'");
  c10::IValue root;
  try {
    root = torch::pickle_load(bytes);
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kIo, "failed to read encodings '" + path + "': " + first_line_of(e));
  }
  if (!root.isGenericDict())
    throw Error(ErrorKind::kIo, "failed to read encodings '" + path + "': expected a dict of layers");
  std::map<std::string, Encoding> out;
  for (const auto& item : root.toGenericDict()) {
    const std::string name = item.key().isString() ? item.key().toStringRef() : "?";
    out.emplace(name, from_dict(item.value(), path, "failed to read encodings '" + path + "' layer '" + name + "'"));
  }
  return out;
}

EncodedBits encoded_bits(const Encoding& e) {
  EncodedBits b;
  for (const Encoding& f : e.factors) b += encoded_bits(f);
  if (e.config.decomposed()) return b;
  const int64_t numel = shape_numel(e.shape);
  const int64_t kept = e.mask.defined() ? e.mask.sum().item<int64_t>() : numel;
  b.codes = kept * e.config.weight_bits;
  if (e.config.quantized()) {
    b.scales = e.scale.numel() * 32;
    if (!e.config.symmetric && traits_of(e.config.quantizer).zero_points)
      b.zero_points = e.scale.numel() * e.config.weight_bits;
  }
  if (e.mask.defined()) {
    if (e.config.sparsity > 0 || !e.config.nm.enabled())
      b.index = numel;
    else
      b.index = kept * static_cast<int64_t>(std::ceil(std::log2(static_cast<double>(e.config.nm.m))));
  }
  if (e.permutation.defined()) {  // the channel order: one index of ceil(log2 run) bits per channel
    const auto run = static_cast<double>(e.permutation.numel());
    b.index += e.permutation.numel() * static_cast<int64_t>(std::ceil(std::log2(std::max(2.0, run))));
  }
  return b;
}

}  // namespace adze

namespace adze {

double planned_layer_bytes(const Layer& layer, const LayerConfig& config) {
  return static_cast<double>(planned_bits(layer, config).total()) / 8.0 + static_cast<double>(layer.bias_params) * 4.0;
}

EncodedBits planned_bits(const Layer& layer, const LayerConfig& config) {
  EncodedBits b;
  if (config.decomposed()) {
    for (const FactorSpec& f : factor_specs(layer, config)) b += planned_bits(f.layer, f.config);
    return b;
  }
  // The encoded layout [C, K] (to_canonical): C along channel_dim, K everything else.
  const Shape& shape = layer.weight_shape;
  const int64_t numel = layer.params;
  const int64_t channels = shape.at(static_cast<std::size_t>(channel_dim(layer)));
  const bool sparse = config.nm.enabled() || config.sparsity > 0;
  int64_t kept = config.nm.enabled() ? numel / config.nm.m * config.nm.n : numel;
  if (config.sparsity > 0) kept = std::llround(static_cast<double>(kept) * (1.0 - config.sparsity));
  b.codes = kept * config.weight_bits;
  if (config.quantized()) {
    const int64_t rows = config.granularity == Granularity::kPerTensor    ? 1
                         : config.granularity == Granularity::kPerChannel ? channels
                                                                          : numel / config.group_size;
    b.scales = rows * 32;
    if (!config.symmetric && traits_of(config.quantizer).zero_points) b.zero_points = rows * config.weight_bits;
  }
  if (sparse) {
    if (config.sparsity > 0 || !config.nm.enabled())
      b.index = numel;
    else
      b.index = kept * static_cast<int64_t>(std::ceil(std::log2(static_cast<double>(config.nm.m))));
  }
  if (config.permute) {
    const int64_t run = layer.reduction_size;  // the reduction channels: a convolution's inputs, a linear's
    b.index += run * static_cast<int64_t>(std::ceil(std::log2(std::max(2.0, static_cast<double>(run)))));
  }
  return b;
}

}  // namespace adze
