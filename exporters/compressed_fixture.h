// A compressed model for exporter tests: the fixture CNN (tests/data/cnn_bn_traced.pt) compressed as `adze
// compress` would, written to a temporary directory.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "compress/compressed_model.h"
#include "compress/pass.h"
#include "compress/report.h"
#include "data/dataset.h"
#include "model/frontend.h"
#include "tests/test_util.h"

namespace adze::testing {

// The fixture CNN compressed as `adze compress` would: fold-bn, 2:4 + INT4 on the classifier, INT8 elsewhere,
// INT8 activations; written to DIR.
constexpr const char* kPlan =
    R"({"defaults": {"weight_bits": 8, "act_bits": 8}, "layers": {"classifier": {"weight_bits": 4, "nm": "2:4"}}})";

struct Compressed {
  testing::TempDir tmp;
  std::string dir = tmp.file("compressed");
  Dataset data = load_dataset("tensors:" + fixture("tensors_small.pt"), {"train", 0, 0});
  explicit Compressed(const char* plan = kPlan) {
    Model model = load_torchscript(fixture("cnn_bn_traced.pt"), {{8, 3, 16, 16}, "float32"});
    CompressionContext c;
    c.model = &model;
    c.table = build_layer_table(model);
    c.data = &data;
    c.plan = resolve_plan(parse_plan(nlohmann::ordered_json::parse(plan), "plan.json"), c.table, "plan.json");
    const auto records = run_pipeline(
        parse_pipeline(nlohmann::ordered_json::parse(
                           R"({"passes": ["fold-bn", "sparsity.nm", "quantize.weights", "quantize.calibrate"]})"),
                       "p.json"),
        c);
    save_compressed(model, c.plan, c.encodings, make_report(c, records), "cnn_bn_traced.pt", dir);
  }
};

}  // namespace adze::testing
