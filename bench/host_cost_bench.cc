// The host's cost models against the clock: every layer of the reference architectures (fmnist-cnn, fmnist-vit,
// fortune-gpt; embeddings aside, since they gather rows) under each weight config at batch 1 and 16, timed as
// the packed runtime runs it (hardware/host_lut.h: time_layer_kernel; a convolution as its im2col GEMM), against
// the roofline's estimate on the calibrated `host` target and the measured cost table's interpolation.
//
//   build/bench/host_cost_bench [--json]
//
// Prints Spearman's rank correlation of each estimate with the measured times (all layer × config × batch
// points, and per model), and the median ratio estimate / measured. Uses one libtorch thread per hardware
// thread, as the CLI does. Calibrates host and measures the cost table first if they are not cached.
#include <torch/torch.h>

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <thread>

#include "core/rank_correlation.h"
#include "core/table.h"
#include "examples/reference/models.h"
#include "hardware/cost_model.h"
#include "hardware/host_calibration.h"
#include "hardware/host_lut.h"
#include "model/frontend.h"
#include "model/layer_table.h"

namespace {

adze::Model trace(const std::string& name) {
  torch::manual_seed(0);
  if (name == "fmnist-cnn") {
    adze::reference::FmnistCnn net;
    net->eval();
    return adze::trace_module(
        *net, [&](const at::Tensor& x) { return net->forward(x); }, {{1, 1, 28, 28}, "float32"}, name);
  }
  if (name == "fmnist-vit") {
    adze::reference::FmnistVit net;
    net->eval();
    return adze::trace_module(
        *net, [&](const at::Tensor& x) { return net->forward(x); }, {{1, 1, 28, 28}, "float32"}, name);
  }
  adze::reference::FortuneGpt net;
  net->eval();
  return adze::trace_module(
      *net, [&](const at::Tensor& x) { return net->forward(x); }, {{1, 64}, "int64"}, name);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Points {
  std::vector<double> measured, roofline, lut;
};

}  // namespace

int main(int argc, char** argv) {
  const bool json = argc > 1 && std::string(argv[1]) == "--json";
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  torch::NoGradGuard no_grad;
  const adze::Target host = adze::host_target();
  (void)adze::host_lut();
  const auto roofline = adze::cost_models().create("roofline", nlohmann::json::object(), "bench");
  const auto measured_model = adze::cost_models().create("measured", nlohmann::json::object(), "bench");
  std::vector<adze::LayerConfig> configs;
  for (int bits : {32, 8, 4, 3, 2})
    for (bool nm : {false, true}) {
      if (bits == 32 && nm) continue;
      adze::LayerConfig c;
      c.weight_bits = bits;
      if (nm) c.nm = adze::NMPattern::parse("2:4");
      configs.push_back(c);
    }
  std::map<std::string, Points> by_model;
  Points all;
  nlohmann::json rows = nlohmann::json::array();
  for (const std::string name : {"fmnist-cnn", "fmnist-vit", "fortune-gpt"}) {
    const adze::Model model = trace(name);
    const adze::LayerTable table = adze::build_layer_table(model);
    for (const adze::Layer& layer : table.layers) {
      if (layer.kind == adze::LayerKind::kEmbedding) continue;
      const int64_t channels = layer.weight_shape[0], reduction = layer.params / channels;
      for (const adze::LayerConfig& c : configs) {
        if (c.nm.enabled() && reduction % 4 != 0) continue;
        for (int64_t batch : {1, 16}) {
          const int64_t tokens = batch * layer.macs / layer.params;
          const double t = adze::time_layer_kernel(channels, reduction, tokens, c, 5);
          const double r = roofline->layer(host, layer, c, batch).latency_s;
          const double l = measured_model->layer(host, layer, c, batch).latency_s;
          for (Points* p : {&all, &by_model[name]}) {
            p->measured.push_back(t);
            p->roofline.push_back(r);
            p->lut.push_back(l);
          }
          rows.push_back({{"model", name},
                          {"layer", layer.name},
                          {"config", c.quantized() ? c.weight_bits : 32},
                          {"nm", c.nm.to_string()},
                          {"batch", batch},
                          {"tokens", tokens},
                          {"measured_s", t},
                          {"roofline_s", r},
                          {"lut_s", l}});
        }
      }
    }
  }
  auto ratio = [](const std::vector<double>& est, const std::vector<double>& meas) {
    std::vector<double> q;
    for (std::size_t i = 0; i < est.size(); ++i) q.push_back(est[i] / meas[i]);
    return median(q);
  };
  nlohmann::json summary = nlohmann::json::array();
  adze::Table t;
  t.add_column("points");
  t.add_column("n", adze::Table::Align::kRight);
  t.add_column("Spearman roofline", adze::Table::Align::kRight);
  t.add_column("Spearman measured table", adze::Table::Align::kRight);
  t.add_column("median roofline/measured", adze::Table::Align::kRight);
  t.add_column("median table/measured", adze::Table::Align::kRight);
  auto add = [&](const std::string& label, const Points& p) {
    const double sr = adze::spearman(p.measured, p.roofline), sl = adze::spearman(p.measured, p.lut);
    const double rr = ratio(p.roofline, p.measured), rl = ratio(p.lut, p.measured);
    t.add_row({label, std::to_string(p.measured.size()), adze::fixed(sr, 3), adze::fixed(sl, 3),
               adze::fixed(rr, 2) + "x", adze::fixed(rl, 2) + "x"});
    summary.push_back({{"points", label},
                       {"n", p.measured.size()},
                       {"spearman_roofline", sr},
                       {"spearman_lut", sl},
                       {"median_roofline_over_measured", rr},
                       {"median_lut_over_measured", rl}});
  };
  add("all", all);
  for (const auto& [name, p] : by_model) add(name, p);
  if (json) {
    std::cout << nlohmann::json{{"threads", at::get_num_threads()}, {"summary", summary}, {"points", rows}}.dump(2)
              << "\n";
  } else {
    std::cout << "host (" << at::get_num_threads() << " threads): each layer x config x batch timed, against the "
              << "roofline on host and the measured cost table\n\n";
    t.print(std::cout);
  }
  return 0;
}
