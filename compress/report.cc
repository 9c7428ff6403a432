#include "compress/report.h"

#include <torch/torch.h>

#include <cmath>
#include <set>
#include <sstream>

#include "compress/decompose.h"
#include "compress/encoding_io.h"
#include "core/table.h"

namespace adze {
namespace {

// The encodings that store a layer's weights: its factors when decomposed, else itself.
std::vector<const Encoding*> parts_of(const Encoding& e) {
  if (e.factors.empty()) return {&e};
  std::vector<const Encoding*> parts;
  for (const Encoding& f : e.factors) parts.push_back(&f);
  return parts;
}

}  // namespace

nlohmann::ordered_json make_report(const CompressionContext& c, const std::vector<PassRecord>& passes) {
  using Json = nlohmann::ordered_json;
  Json report;
  Json metrics = Json::object();
  for (const auto& [label, m] : c.metrics) metrics[label] = to_json(m);
  report["metrics"] = metrics;

  int64_t original_bits = 0, compressed_bits = 0, encoded_bits_total = 0, encoded_weight_count = 0;
  std::set<std::string> encoded_weights;
  Json layers = Json::array();
  for (const auto& layer : c.table.layers) {
    auto it = c.encodings.find(layer.name);
    if (it == c.encodings.end()) continue;
    const Encoding& e = it->second;
    encoded_weights.insert(layer.weight);
    const EncodedBits bits = encoded_bits(e);
    compressed_bits += bits.total();
    encoded_bits_total += bits.total();
    encoded_weight_count += shape_numel(e.shape);
    Json l;
    l["name"] = layer.name;
    l["weight_bits"] = e.config.weight_bits;
    l["nm"] = e.config.nm.to_string();
    l["decompose"] = describe_decomposition(layer, e.config);
    l["permuted"] = e.permutation.defined();
    const int64_t numel = shape_numel(e.shape);
    // Of the stored weights (a decomposed layer's: its factors'), the share that is zero.
    int64_t stored = 0, kept = 0;
    for (const Encoding* part : parts_of(e)) {
      stored += shape_numel(part->shape);
      kept += part->mask.defined() ? part->mask.sum().item<int64_t>() : shape_numel(part->shape);
    }
    l["sparsity"] = 1.0 - static_cast<double>(kept) / static_cast<double>(stored);
    // The weight the final projection approximated: the latent one after fine-tuning, else the original.
    const auto latent = c.latents.find(layer.name);
    const at::Tensor original =
        (latent != c.latents.end() ? latent->second : c.originals.at(layer.name)).to(torch::kDouble);
    const double noise = (original - e.decode().to(torch::kDouble)).pow(2).sum().item<double>();
    const double signal = original.pow(2).sum().item<double>();
    l["sqnr_db"] = noise > 0 ? Json(10.0 * std::log10(signal / noise)) : Json(nullptr);
    l["bits"] = {
        {"codes", bits.codes}, {"scales", bits.scales}, {"zero_points", bits.zero_points}, {"index", bits.index}};
    l["bits_per_weight"] = static_cast<double>(bits.total()) / static_cast<double>(numel);
    layers.push_back(l);
  }
  for (const auto& t : c.model->tensors()) {
    if (!t.is_parameter) continue;
    original_bits += 32 * t.value.numel();
    if (!encoded_weights.count(t.name)) compressed_bits += 32 * t.value.numel();
  }
  report["size"] = {
      {"original_bytes", original_bits / 8},
      {"compressed_bytes", (compressed_bits + 7) / 8},
      {"ratio", static_cast<double>(original_bits) / static_cast<double>(std::max<int64_t>(1, compressed_bits))},
      {"average_weight_bits",
       static_cast<double>(encoded_bits_total) / static_cast<double>(std::max<int64_t>(1, encoded_weight_count))}};
  report["layers"] = layers;
  Json timings = Json::array();
  for (const auto& p : passes) {
    Json t = {{"name", p.name}, {"seconds", p.seconds}};
    if (!p.phases.empty()) {
      Json phases = Json::object();
      for (const auto& [phase, seconds] : p.phases) phases[phase] = seconds;
      t["phases"] = phases;
    }
    timings.push_back(t);
  }
  report["passes"] = timings;
  report["notes"] = c.notes;
  return report;
}

std::string report_markdown(const nlohmann::ordered_json& r) {
  std::ostringstream out;
  out << "# adze compression report\n\n## Quality\n\n| metric | before | after |\n|---|---:|---:|\n";
  const auto& m = r["metrics"];
  for (const char* key : {"top1", "cross_entropy", "perplexity", "bits_per_char"}) {
    if (!(m.contains("before") && m["before"].contains(key)) && !(m.contains("after") && m["after"].contains(key)))
      continue;
    auto cell = [&](const char* label) {
      return m.contains(label) && m[label].contains(key) ? fixed(m[label][key].get<double>(), 4) : std::string("-");
    };
    out << "| " << key << " | " << cell("before") << " | " << cell("after") << " |\n";
  }
  const auto& s = r["size"];
  out << "\n## Size\n\n| | bytes |\n|---|---:|\n| original (fp32) | " << s["original_bytes"].get<int64_t>()
      << " |\n| compressed | " << s["compressed_bytes"].get<int64_t>() << " |\n| ratio | "
      << fixed(s["ratio"].get<double>(), 2)
      << "x |\n\n## Layers\n\n| layer | bits | N:M | decomposition | sparsity | SQNR (dB) | bits/weight "
         "|\n|---|---:|---|---|---:|---:|---:|\n";
  for (const auto& l : r["layers"])
    out << "| " << l["name"].get<std::string>() << " | " << l["weight_bits"].get<int>() << " | "
        << l["nm"].get<std::string>() << " | " << l["decompose"].get<std::string>() << " | "
        << percent(l["sparsity"].get<double>(), 1) << " | "
        << (l["sqnr_db"].is_null() ? std::string("lossless") : fixed(l["sqnr_db"].get<double>(), 1)) << " | "
        << fixed(l["bits_per_weight"].get<double>(), 2) << " |\n";
  out << "\n## Passes\n\n| pass | seconds |\n|---|---:|\n";
  for (const auto& p : r["passes"]) {
    out << "| " << p["name"].get<std::string>() << " | " << fixed(p["seconds"].get<double>(), 3) << " |\n";
    if (p.contains("phases"))
      for (const auto& [phase, seconds] : p["phases"].items())
        out << "| " << p["name"].get<std::string>() << ": " << phase << " | " << fixed(seconds.get<double>(), 3)
            << " |\n";
  }
  return out.str();
}

}  // namespace adze
