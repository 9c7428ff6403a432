#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "core/files.h"
#include "core/isa.h"
#include "hardware/builtin_targets.h"
#include "hardware/cost_model.h"
#include "hardware/host_calibration.h"
#include "hardware/host_conv_timing.h"
#include "hardware/host_lut.h"
#include "hardware/host_timings.h"
#include "model/frontend.h"
#include "model/layer_table.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using testing::expect_error;

Layer linear_layer(int64_t out, int64_t in, int64_t tokens = 1) {
  Layer l;
  l.name = "fc";
  l.weight = "fc.weight";
  l.kind = LayerKind::kLinear;
  l.weight_shape = {out, in};
  l.params = out * in;
  l.macs = out * in * tokens;
  l.input_elements = in * tokens;
  l.output_elements = out * tokens;
  l.in_channels = in;
  l.out_channels = out;
  l.reduction_size = in;
  return l;
}

LayerConfig config(int weight_bits, int act_bits, NMPattern nm = {}) {
  LayerConfig c;
  c.weight_bits = weight_bits;
  c.act_bits = act_bits;
  c.nm = nm;
  return c;
}

TEST(Target, EveryBuiltInTargetParsesWithASourceForEveryFigure) {
  ASSERT_GE(builtin_targets().size(), 5u);
  for (const auto& name : {"a100", "cortex-a76", "mobile-npu", "cortex-m7", "fpga-sta"}) {
    SCOPED_TRACE(name);
    const Target t = load_target(name);
    EXPECT_EQ(t.name, name);
    EXPECT_FALSE(t.memory.empty());
    for (const auto& [p, f] : t.macs_per_s) EXPECT_FALSE(f.source.empty());
    // Written back and read again: the same target.
    EXPECT_EQ(to_json(parse_target(to_json(t), "again")), to_json(t));
  }
  expect_error([] { load_target("tpu-v9"); }, ErrorKind::kInvalidConfig,
               {"unknown target 'tpu-v9'", "a100", "cortex-m7", "host"});
}

TEST(Target, BadFilesSayWhichFieldIsWrong) {
  const nlohmann::json good = to_json(load_target("a100"));
  struct Case {
    std::function<void(nlohmann::json&)> spoil;
    std::vector<std::string> message;
  };
  const std::vector<Case> cases = {
      {[](nlohmann::json& j) { j.erase("macs_per_s"); }, {"field 'macs_per_s'", "missing"}},
      {[](nlohmann::json& j) { j["macs_per_s"]["int8"].erase("source"); }, {"macs_per_s.int8", "needs a source"}},
      {[](nlohmann::json& j) { j["macs_per_s"]["int8"]["source"] = ""; }, {"macs_per_s.int8", "needs a source"}},
      {[](nlohmann::json& j) { j["macs_per_s"]["int8"]["value"] = -1; }, {"macs_per_s.int8", "-1", "positive"}},
      {[](nlohmann::json& j) { j["macs_per_s"]["int8"]["value"] = "fast"; }, {"macs_per_s.int8", "positive"}},
      {[](nlohmann::json& j) { j["macs_per_s"]["bf16"] = j["macs_per_s"]["fp16"]; },
       {"macs_per_s.bf16", "unknown precision"}},
      {[](nlohmann::json& j) { j["nm_speedup"]["two of four"] = j["nm_speedup"]["2:4"]; }, {"nm_speedup.two of four"}},
      {[](nlohmann::json& j) {
         j["weight_bits"] = {4, 12};
       },
       {"weight_bits", "12"}},
      {[](nlohmann::json& j) { j["memory"][0].erase("bytes_per_s"); }, {"memory[0]", "bytes_per_s", "missing"}},
      {[](nlohmann::json& j) { j["memory"][1]["name"] = "hbm2"; }, {"memory[1]", "second level named 'hbm2'"}},
      {[](nlohmann::json& j) { j["weights_in"] = "tape"; }, {"weights_in", "'tape' is not a memory level"}},
      {[](nlohmann::json& j) { j["colour"] = "green"; }, {"field 'colour'", "unknown field"}},
      {[](nlohmann::json& j) { j["schema"] = "adze.target.v0"; }, {"schema", "adze.target.v1"}},
      {[](nlohmann::json& j) { j["pj_per_mac"].erase("int4"); }, {"pj_per_mac", "int4"}},
      {[](nlohmann::json& j) { j["float_precision"] = "fp64"; }, {"float_precision", "fp64"}},
  };
  for (const auto& c : cases) {
    nlohmann::json j = good;
    c.spoil(j);
    SCOPED_TRACE(j.dump());
    std::vector<std::string> message = c.message;
    message.push_back("target 'bad.json'");
    expect_error([&] { parse_target(j, "bad.json"); }, ErrorKind::kInvalidConfig, message);
  }
  testing::TempDir tmp;
  write_file_atomically(tmp.file("cut.json"), good.dump().substr(0, 100));
  expect_error([&] { load_target(tmp.file("cut.json")); }, ErrorKind::kInvalidConfig, {"cut.json", "not valid JSON"});
}

TEST(Target, SaysWhichConfigsItRuns) {
  const Target npu = load_target("mobile-npu");
  EXPECT_EQ(npu.unsupported(config(8, 8)), "");
  EXPECT_EQ(npu.compute_precision(config(8, 16)), "int16");
  EXPECT_NE(npu.unsupported(config(4, 8)).find("weight_bits 4"), std::string::npos);
  EXPECT_NE(npu.unsupported(config(8, 0)).find("float activations"), std::string::npos);
  const Target a100 = load_target("a100");
  EXPECT_EQ(a100.compute_precision(config(4, 4)), "int4");
  EXPECT_EQ(a100.compute_precision(config(4, 8)), "int8");
  EXPECT_EQ(a100.compute_precision(config(4, 0)), "fp16");  // weight-only quantization computes in fp16
  EXPECT_DOUBLE_EQ(a100.nm_compute_speedup(config(8, 8, {2, 4})), 2.0);
  EXPECT_DOUBLE_EQ(a100.nm_compute_speedup(config(8, 8, {1, 4})), 1.0);  // not a pattern its hardware runs
  const Target fpga = load_target("fpga-sta");
  EXPECT_DOUBLE_EQ(fpga.nm_compute_speedup(config(8, 8, {1, 8})), 0.9 * 8);  // flexible N:M
}

// The known facts about 2:4 on an A100: no gain for small layers at batch 1, close to 2× for large
// compute-bound ones.
TEST(Roofline, A100SparsityHelpsOnlyLargeComputeBoundLayers) {
  const Target a100 = load_target("a100");
  const auto roofline = cost_models().get("roofline", "test").make(nlohmann::json::object());
  auto speedup = [&](const Layer& l, int64_t batch) {
    const LayerCost dense = roofline->layer(a100, l, config(8, 8), batch);
    const LayerCost sparse = roofline->layer(a100, l, config(8, 8, {2, 4}), batch);
    return dense.latency_s / sparse.latency_s;
  };
  const Layer small = linear_layer(256, 256);
  // The ratios, printed for docs/results/cost-models.md (build/hardware/hardware_test --gtest_filter='Roofline.A100*').
  std::cout << "a100 2:4 speedup: 256x256 at batch 1 " << speedup(small, 1) << "x, 8192x8192 at batch 8192 "
            << speedup(linear_layer(8192, 8192), 8192) << "x\n";
  EXPECT_LT(speedup(small, 1), 1.05);
  EXPECT_TRUE(roofline->layer(a100, small, config(8, 8), 1).memory_bound());
  const Layer large = linear_layer(8192, 8192);
  EXPECT_GT(speedup(large, 8192), 1.8);
  EXPECT_LE(speedup(large, 8192), 2.0);
  EXPECT_FALSE(roofline->layer(a100, large, config(8, 8), 8192).memory_bound());
  // Fewer weight bits: fewer bytes, less time when memory-bound.
  const LayerCost int8 = roofline->layer(a100, large, config(8, 0), 1),
                  int4 = roofline->layer(a100, large, config(4, 0), 1);
  EXPECT_LT(int4.weight_bytes, 0.6 * int8.weight_bytes);
  EXPECT_LT(int4.latency_s, int8.latency_s);
  expect_error([&] { roofline->layer(load_target("mobile-npu"), large, config(4, 8), 1); }, ErrorKind::kUnsupported,
               {"layer 'fc'", "weight_bits 4"});
}

TEST(Roofline, WholeModelSumsLayersChecksFitAndStreams) {
  Model model = load_torchscript(testing::fixture("cnn_bn_traced.pt"), {{1, 3, 16, 16}, "float32"});
  const LayerTable table = build_layer_table(model);
  std::map<std::string, LayerConfig> plan;
  for (const auto& l : table.layers) plan[l.name] = config(8, 8);
  const auto roofline = cost_models().get("roofline", "test").make(nlohmann::json::object());
  const Target mcu = load_target("cortex-m7");
  const ModelCost cost = model_cost(*roofline, mcu, table, plan, 1);
  ASSERT_EQ(cost.layers.size(), table.layers.size());
  double sum = 0;
  for (const auto& [name, c] : cost.layers) {
    sum += c.latency_s;
    EXPECT_EQ(c.weight_level, "flash");
    EXPECT_EQ(c.activation_level, "sram");
  }
  EXPECT_DOUBLE_EQ(cost.latency_s, sum);
  EXPECT_TRUE(cost.fit_problems.empty());
  Target tiny = mcu;
  tiny.memory[0].bytes.value = 100;
  const ModelCost too_big = model_cost(*roofline, tiny, table, plan, 1);
  ASSERT_EQ(too_big.fit_problems.size(), 1u);
  EXPECT_NE(too_big.fit_problems[0].find("do not fit flash"), std::string::npos);
  // Streaming weights from storage can only add time, and never beats loading them all.
  const Target a76 = load_target("cortex-a76");
  const ModelCost phone = model_cost(*roofline, a76, table, plan, 1);
  EXPECT_GE(phone.streamed_latency_s, phone.latency_s);
  EXPECT_GE(phone.streamed_latency_s, phone.weight_bytes / a76.storage_bytes_per_s->value);
  // A plan the target cannot run: every layer listed.
  for (auto& [name, c] : plan) c = config(4, 8);
  expect_error([&] { model_cost(*roofline, load_target("mobile-npu"), table, plan, 1); }, ErrorKind::kUnsupported,
               {"does not run on target 'mobile-npu'", "3 layer(s)", "features.0", "classifier"});
}

TEST(Host, CalibratesOnceAndCaches) {
  testing::TempDir tmp;
  setenv("ADZE_CACHE_DIR", tmp.path().c_str(), 1);
  const Target host = host_target();
  EXPECT_TRUE(host.measured);
  EXPECT_GT(host.macs_per_s.at("fp32").value, 1e8);
  EXPECT_GT(host.memory.front().bytes_per_s.value, 1e8);
  EXPECT_TRUE(std::filesystem::exists(host_target_path()));
  EXPECT_EQ(to_json(load_target("host")), to_json(host));  // read back from the cache, not measured again
  unsetenv("ADZE_CACHE_DIR");
}

// A table whose times follow t = 1e-9 · e^0.5 · t^0.25 · bits: log-linear, so interpolation is exact.
HostLut synthetic_lut() {
  HostLut lut;
  lut.threads = 1;
  lut.elements = {1e3, 1e4, 1e5};
  lut.tokens = {1, 10, 100};
  for (int bits : {2, 3, 4, 8, 32})
    for (bool nm : {false, true}) {
      if (bits == 32 && nm) continue;
      std::vector<double> row;
      for (double e : lut.elements)
        for (double t : lut.tokens) row.push_back(1e-9 * std::sqrt(e) * std::pow(t, 0.25) * bits * (nm ? 0.5 : 1.0));
      lut.seconds[bits == 32 ? "fp32" : "w" + std::to_string(bits) + (nm ? " 2:4" : "")] = row;
    }
  return lut;
}

TEST(HostLut, InterpolatesInLogSpaceAndBetweenMeasuredBitWidths) {
  const HostLut lut = synthetic_lut();
  LayerConfig w4, w6, w4nm, fp;
  w4.weight_bits = 4;
  w6.weight_bits = 6;
  w4nm = w4;
  w4nm.nm = NMPattern::parse("2:4");
  auto expected = [](double e, double t, double bits) { return 1e-9 * std::sqrt(e) * std::pow(t, 0.25) * bits; };
  EXPECT_NEAR(lut.lookup(w4, 1e4, 10), expected(1e4, 10, 4), 1e-15);                              // a grid point
  EXPECT_NEAR(lut.lookup(w4, 3e4, 30), expected(3e4, 30, 4), 1e-12 * expected(3e4, 30, 4));       // inside
  EXPECT_NEAR(lut.lookup(w4, 1e6, 1000), expected(1e6, 1000, 4), 1e-9 * expected(1e6, 1000, 4));  // extrapolated
  EXPECT_NEAR(lut.lookup(w4nm, 1e4, 10), expected(1e4, 10, 2), 1e-15);
  EXPECT_NEAR(lut.lookup(w6, 1e4, 10), expected(1e4, 10, 6), 1e-15);  // halfway between w4 and w8
  EXPECT_NEAR(lut.lookup(fp, 1e4, 10), expected(1e4, 10, 32), 1e-15);
  const HostLut back = host_lut_from_json(to_json(lut), "test");
  EXPECT_EQ(back.seconds, lut.seconds);
  nlohmann::json bad = to_json(lut);
  bad["seconds"]["w4"][3] = -1.0;
  expect_error([&] { host_lut_from_json(bad, "lut.json"); }, ErrorKind::kInvalidConfig,
               {"'lut.json'", "entry 'w4' is not a full grid of positive seconds"});
  bad = to_json(lut);
  bad.erase("tokens");
  expect_error([&] { host_lut_from_json(bad, "lut.json"); }, ErrorKind::kInvalidConfig, {"malformed"});
}

TEST(HostLut, TimesTheRuntimeKernelAndPricesOnlyTheHost) {
  LayerConfig w4;
  w4.weight_bits = 4;
  w4.nm = NMPattern::parse("2:4");
  EXPECT_GT(time_layer_kernel(64, 128, 8, w4, 2), 0);
  EXPECT_GT(time_layer_kernel(64, 128, 8, LayerConfig{}, 2), 0);
  const auto measured = cost_models().create("measured", nlohmann::json::object(), "test");
  Layer layer;
  layer.name = "fc";
  layer.weight_shape = {64, 128};
  layer.params = layer.macs = 64 * 128;
  expect_error([&] { measured->layer(load_target("a100"), layer, w4, 1); }, ErrorKind::kInvalidArgument,
               {"--target host", "'a100'"});
}

// A convolution's geometry from what the layer table records, and the convolution timed as the runtime runs it;
// the measured model prices a convolution by that timing (the same on a second ask: timed once), not the table.
TEST(HostConvTiming, GeometryFromTheLayerTableAndTheConvolutionTimedWhole) {
  const auto conv = [](int64_t cin, int64_t cout, int64_t k, int64_t side, int64_t out_side) {
    Layer l;
    l.name = l.weight = "conv";
    l.kind = LayerKind::kConv2d;
    l.weight_shape = {cout, cin, k, k};
    l.params = cout * cin * k * k;
    l.in_channels = cin, l.out_channels = cout, l.reduction_size = cin * k * k;
    l.input_elements = cin * side * side, l.output_elements = cout * out_side * out_side;
    l.macs = l.params * out_side * out_side;
    return l;
  };
  struct Case {
    Layer layer;
    int64_t side, stride, padding;
  };
  for (const Case& c : std::vector<Case>{{conv(1, 32, 3, 28, 28), 28, 1, 1},   // fmnist-cnn's first
                                         {conv(3, 64, 7, 64, 32), 64, 2, 3},   // ResNet-18's stem at 64x64
                                         {conv(64, 128, 3, 16, 8), 16, 2, 1},  // a strided 3x3
                                         {conv(1, 64, 7, 28, 4), 28, 0, 0},    // fmnist-vit's patches
                                         {conv(16, 16, 1, 8, 8), 8, 1, 0}}) {  // pointwise
    SCOPED_TRACE(c.layer.weight_shape[2]);
    const auto g = conv_geometry(c.layer);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->side, c.side);
    EXPECT_EQ((g->side + 2 * g->padding - g->kernel) / g->stride + 1, g->out_side);
    if (c.stride == 0) continue;  // 28 -> 4 by a 7x7: stride 6 with padding 1 times the same as the model's 7
    EXPECT_EQ(g->stride, c.stride);
    EXPECT_EQ(g->padding, c.padding);
  }
  Layer grouped = conv(8, 8, 3, 8, 8);
  grouped.groups = 8;
  EXPECT_FALSE(conv_geometry(grouped));
  Layer uneven = conv(3, 8, 3, 8, 8);
  uneven.input_elements = 3 * 8 * 9;  // not a square
  EXPECT_FALSE(conv_geometry(uneven));
  Layer linear = conv(8, 8, 1, 1, 1);
  linear.kind = LayerKind::kLinear;
  EXPECT_FALSE(conv_geometry(linear));

  const Layer layer = conv(16, 32, 3, 14, 14);
  LayerConfig w8, w4_24, a8;
  w8.weight_bits = 8;
  w4_24.weight_bits = 4;
  w4_24.nm = NMPattern::parse("2:4");
  a8 = w8;
  a8.act_bits = 8;
  for (const LayerConfig& config : {w8, w4_24, a8, LayerConfig{}}) {
    const double t = time_conv_layer(layer, *conv_geometry(layer), config, 1, 2);
    EXPECT_TRUE(t > 0 && t < 1) << t;
  }
  // Priced by that timing, kept on disk: the same figure from another instance of the model (another search),
  // until a calibration clears it; a damaged cache is measured anew.
  testing::TempDir tmp;
  setenv("ADZE_CACHE_DIR", tmp.path().c_str(), 1);
  Target host = load_target("a100");
  host.name = "host";
  const double first = cost_models().create("measured", {}, "test")->layer(host, layer, w8, 1).latency_s;
  EXPECT_GT(first, 0);
  EXPECT_EQ(cost_models().create("measured", {}, "test")->layer(host, layer, w8, 1).latency_s, first);
  EXPECT_EQ(cached_host_seconds("another", [] { return 2.0; }), 2.0);
  EXPECT_EQ(cached_host_seconds("another", [] { return 3.0; }), 2.0);
  write_file_atomically(tmp.path() + "/targets/host-timings.json", "{\"format\": ");
  EXPECT_EQ(cached_host_seconds("another", [] { return 4.0; }), 4.0);
  clear_host_timings();
  EXPECT_EQ(cached_host_seconds("another", [] { return 5.0; }), 5.0);
  unsetenv("ADZE_CACHE_DIR");
}

// The measured model prices a layer as the packed runtime runs it, from the cached table: a SmartDeal layer,
// composed at open, as the dense fp32 layer; a low-rank one as the sum of its factors.
TEST(HostLut, PricesDecomposedLayersAsThePackedRuntimeRunsThem) {
  testing::TempDir tmp;
  setenv("ADZE_CACHE_DIR", tmp.path().c_str(), 1);
  HostLut lut = synthetic_lut();
  lut.threads = at::get_num_threads();
  lut.isa = to_string(active_isa());
  std::filesystem::create_directories(tmp.path() + "/targets");
  write_file_atomically(tmp.path() + "/targets/host-lut.json", to_json(lut).dump());
  const auto measured = cost_models().create("measured", nlohmann::json::object(), "test");
  Target host = load_target("a100");  // bytes and energy from its roofline; latency from the table
  host.name = "host";
  Layer layer;
  layer.name = "fc";
  layer.kind = LayerKind::kLinear;
  layer.weight_shape = {64, 128};
  layer.params = layer.macs = 64 * 128;
  LayerConfig w4;
  w4.weight_bits = 4;
  EXPECT_DOUBLE_EQ(measured->layer(host, layer, w4, 1).latency_s, lut.lookup(w4, 64 * 128, 1));
  LayerConfig smartdeal = w4;
  smartdeal.decompose = Decomposition::kSmartDeal;
  smartdeal.basis = 4;
  EXPECT_DOUBLE_EQ(measured->layer(host, layer, smartdeal, 1).latency_s, lut.lookup(LayerConfig{}, 64 * 128, 1));
  LayerConfig lowrank = w4;
  lowrank.decompose = Decomposition::kLowRank;
  lowrank.rank = 8;
  EXPECT_DOUBLE_EQ(measured->layer(host, layer, lowrank, 1).latency_s,
                   lut.lookup(w4, 8 * 128, 1) + lut.lookup(w4, 64 * 8, 1));
  unsetenv("ADZE_CACHE_DIR");
}

}  // namespace
}  // namespace adze
