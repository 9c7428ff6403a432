#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/files.h"
#include "core/isa.h"
#include "examples/reference/models.h"
#include "exporters/compressed_fixture.h"
#include "exporters/exporter.h"
#include "model/layer_table.h"
#include "model/tapped_graph.h"
#include "runtime/packed_layer.h"
#include "runtime/packed_model.h"
#include "runtime/packed_ops.h"
#include "runtime/safetensors.h"
#include "runtime/split_choice.h"

namespace adze {
namespace {

using packed::PackedModel;
using testing::Compressed;
using testing::expect_error;

// ctest runs the runtime's tests once more per lower instruction set (ADZE_ISA, exporters/CMakeLists.txt); a
// path this CPU lacks skips them.
bool forced_isa_runs() {
  try {
    active_isa();
    return true;
  } catch (const Error&) {
    return false;
  }
}
#define SKIP_UNLESS_ISA_RUNS() \
  if (!forced_isa_runs()) GTEST_SKIP() << "ADZE_ISA names a path this CPU lacks"

// 10·log10(Σ want² / Σ (got − want)²): how far an approximate result lies from the exact one.
double sqnr_db(const at::Tensor& want, const at::Tensor& got) {
  const double noise = (got - want).to(torch::kDouble).pow(2).sum().item<double>();
  return noise == 0 ? INFINITY : 10 * std::log10(want.to(torch::kDouble).pow(2).sum().item<double>() / noise);
}

// Same dtype, same shape, same bytes (or both undefined).
::testing::AssertionResult same_bits(const at::Tensor& a, const at::Tensor& b) {
  if (a.defined() != b.defined()) return ::testing::AssertionFailure() << "one is undefined";
  if (!a.defined()) return ::testing::AssertionSuccess();
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes())
    return ::testing::AssertionFailure() << a.scalar_type() << a.sizes() << " vs " << b.scalar_type() << b.sizes();
  const at::Tensor x = a.contiguous(), y = b.contiguous();
  if (std::memcmp(x.data_ptr(), y.data_ptr(), static_cast<std::size_t>(x.numel() * x.element_size())) != 0)
    return ::testing::AssertionFailure() << "bytes differ";
  return ::testing::AssertionSuccess();
}

void expect_bit_identical(const Encoding& a, const Encoding& b, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(a.shape, b.shape);
  EXPECT_EQ(a.order, b.order);
  EXPECT_TRUE(a.config == b.config);
  EXPECT_TRUE(same_bits(a.codes, b.codes)) << "codes";
  EXPECT_TRUE(same_bits(a.scale, b.scale)) << "scale";
  EXPECT_TRUE(same_bits(a.zero_point, b.zero_point)) << "zero_point";
  EXPECT_TRUE(same_bits(a.mask, b.mask)) << "mask";
  EXPECT_TRUE(same_bits(a.permutation, b.permutation)) << "permutation";
  EXPECT_TRUE(same_bits(a.values, b.values)) << "values";
}

Layer make_layer(LayerKind kind, Shape shape) {
  Layer l;
  l.name = "layer";
  l.weight = "layer.weight";
  l.kind = kind;
  l.weight_shape = shape;
  l.reduction_size = shape.at(1);
  return l;
}

struct Case {
  std::string name;
  LayerConfig config;
};

std::vector<Case> every_scheme() {
  std::vector<Case> cases;
  for (int bits : {2, 3, 4, 5, 8})
    for (bool symmetric : {true, false}) {
      LayerConfig c;
      c.weight_bits = bits;
      c.symmetric = symmetric;
      cases.push_back({"int" + std::to_string(bits) + (symmetric ? "" : "-asym"), c});
    }
  auto add = [&](const std::string& name, auto edit) {
    LayerConfig c;
    c.weight_bits = 4;
    edit(c);
    cases.push_back({name, c});
  };
  add("int4-tensor", [](LayerConfig& c) { c.granularity = Granularity::kPerTensor; });
  add("int4-group8", [](LayerConfig& c) { c.granularity = Granularity::kPerGroup, c.group_size = 8; });
  add("2:4-int4", [](LayerConfig& c) { c.nm = {2, 4}; });
  add("1:4-int3-asym", [](LayerConfig& c) { c.nm = {1, 4}, c.weight_bits = 3, c.symmetric = false; });
  add("4:8-int8-asym-group", [](LayerConfig& c) {
    c.nm = {4, 8}, c.weight_bits = 8, c.symmetric = false, c.granularity = Granularity::kPerGroup, c.group_size = 16;
  });
  add("2:4-int4-permuted", [](LayerConfig& c) { c.nm = {2, 4}, c.permute = true; });
  add("pow2-5", [](LayerConfig& c) { c.quantizer = Quantizer::kPow2, c.weight_bits = 5; });
  add("2:4-pow2-4", [](LayerConfig& c) { c.quantizer = Quantizer::kPow2, c.nm = {2, 4}; });
  add("float", [](LayerConfig& c) { c.weight_bits = 32; });
  add("2:4-float", [](LayerConfig& c) { c.weight_bits = 32, c.nm = {2, 4}; });
  add("3:16-float-permuted", [](LayerConfig& c) { c.weight_bits = 32, c.nm = {3, 16}, c.permute = true; });
  return cases;
}

// Packs one Encoding into a file of its own and views it back.
struct OneLayerFile {
  testing::TempDir tmp;
  std::shared_ptr<const packed::SafetensorsFile> file;
  std::unique_ptr<packed::LayerView> view;
  explicit OneLayerFile(const Encoding& e, bool kernel_layout = true) {
    packed::PackedLayer p = packed::pack_layer("layer.weight", e, kernel_layout);
    packed::write_safetensors(tmp.file("l.safetensors"), {}, p.tensors);
    file = packed::SafetensorsFile::open(tmp.file("l.safetensors"));
    view = std::make_unique<packed::LayerView>(nlohmann::json::parse(p.header.dump()), file->tensors(), "test");
  }
};

TEST(PackedLayer, EverySchemeGivesBackTheEncodingBitForBit) {
  torch::manual_seed(0);
  for (const auto& [shape, kind] :
       std::vector<std::pair<Shape, LayerKind>>{{{24, 32}, LayerKind::kLinear}, {{8, 16, 3, 3}, LayerKind::kConv2d}}) {
    const at::Tensor w =
        torch::randn(std::vector<int64_t>(shape.begin(), shape.end())) *
        torch::rand({1, shape[1]})
            .reshape(shape.size() == 2 ? std::vector<int64_t>{1, shape[1]} : std::vector<int64_t>{1, shape[1], 1, 1});
    for (const auto& c : every_scheme()) {
      const Encoding e = project(w, make_layer(kind, shape), c.config);
      for (bool kernel_layout : {true, false}) {  // as version 2 writes it, and as version 1 did
        OneLayerFile f(e, kernel_layout);
        const std::string what = c.name + " " + shape_to_string(shape) + (kernel_layout ? "" : " (version 1)");
        expect_bit_identical(f.view->encoding(), e, what);
        // The runtime's row decoder computes what Encoding::decode does, in the encoded layout.
        at::Tensor rows = torch::full({e.channels(), e.reduction()}, NAN);  // a row left unwritten fails
        f.view->decode_rows(0, e.channels(), rows.data_ptr<float>());
        EXPECT_TRUE(torch::equal(rows, e.to_encoded_layout(e.decode()))) << what;
        // Listed rows (an embedding's ids, repeated and out of order) are those rows, from the decoded table
        // made at the first call; an id outside the layer is refused.
        const std::vector<int64_t> ids = {3, 0, e.channels() - 1, 3};
        at::Tensor listed = torch::full({4, e.reduction()}, NAN);
        for (int call = 0; call < 2; ++call) {
          f.view->decode_listed_rows(ids.data(), 4, listed.data_ptr<float>());
          EXPECT_TRUE(torch::equal(listed, rows.index_select(0, torch::tensor(ids)))) << what << ", call " << call;
        }
        const int64_t outside = e.channels();
        EXPECT_THROW(f.view->decode_listed_rows(&outside, 1, listed.data_ptr<float>()), Error) << what;
        // Both forms give the integer kernels the same weights.
        OneLayerFile other(e, !kernel_layout);
        ASSERT_EQ(f.view->integer_weights() != nullptr, other.view->integer_weights() != nullptr) << what;
        if (const runtime::QWeights* a = f.view->integer_weights()) {
          const runtime::QWeights* b = other.view->integer_weights();
          const int64_t bytes = a->layout.rows * a->layout.plane_row_bytes();
          EXPECT_EQ(std::memcmp(a->planes, b->planes, static_cast<std::size_t>(bytes)), 0) << what;
          EXPECT_EQ(std::memcmp(a->wsum, b->wsum, static_cast<std::size_t>(a->layout.rows * a->layout.groups * 4)), 0);
        }
      }
    }
  }
}

// A layer past the decoded table's size decodes the listed rows one by one, to the same values.
TEST(PackedLayer, ListedRowsOfALargeLayerAreItsRows) {
  torch::manual_seed(4);
  const int64_t C = packed::LayerView::kDecodedTableMaxBytes / (4 * 256) + 8, K = 256;
  LayerConfig c;
  c.nm = {2, 4};
  const Encoding e = project(torch::randn({C, K}), make_layer(LayerKind::kLinear, {C, K}), c);
  OneLayerFile f(e);
  const std::vector<int64_t> ids = {C - 1, 5, 5, 0};
  at::Tensor listed = torch::full({4, K}, NAN), want = torch::full({1, K}, NAN);
  f.view->decode_listed_rows(ids.data(), 4, listed.data_ptr<float>());
  for (int64_t i = 0; i < 4; ++i) {
    f.view->decode_rows(ids[static_cast<std::size_t>(i)], ids[static_cast<std::size_t>(i)] + 1, want.data_ptr<float>());
    EXPECT_TRUE(torch::equal(listed[i], want[0])) << "id " << ids[static_cast<std::size_t>(i)];
  }
}

TEST(PackedLayer, StoresOnlyTheKeptCodesAtTheirWidth) {
  torch::manual_seed(1);
  LayerConfig c;
  c.weight_bits = 4;
  c.nm = {2, 4};
  const at::Tensor w = torch::randn({64, 128});
  auto bytes_of = [](const packed::PackedLayer& p) {
    std::map<std::string, int64_t> bytes;
    for (const auto& t : p.tensors) bytes[t.name] = static_cast<int64_t>(t.bytes.size());
    return bytes;
  };
  // Uniform codes: the integer kernels' layout, 64 of every 128 weights at 4 bits plus each one's 2-bit
  // position in its group of four; per row a scale, the zero offset and the sum of its weights.
  const auto kernel = bytes_of(packed::pack_layer("w", project(w, make_layer(LayerKind::kLinear, {64, 128}), c)));
  EXPECT_EQ(kernel.at("w:planes"), 64 * 64 * 4 / 8 + 64 * 64 * 2 / 8);
  EXPECT_EQ(kernel.at("w:kernel_scale"), 64 * 4);
  EXPECT_EQ(kernel.at("w:offset"), 64 * 4);
  EXPECT_EQ(kernel.at("w:wsum"), 64 * 4);
  EXPECT_FALSE(kernel.count("w:codes") || kernel.count("w:index") || kernel.count("w:zero_point"));
  // Power-of-two codes: bit-packed kept codes and their index bits.
  c.quantizer = Quantizer::kPow2;
  const auto pow2 = bytes_of(packed::pack_layer("w", project(w, make_layer(LayerKind::kLinear, {64, 128}), c)));
  EXPECT_EQ(pow2.at("w:codes"), 64 * 64 * 4 / 8);  // 64 of every 128 weights, 4 bits each
  EXPECT_EQ(pow2.at("w:index"), 64 * 64 * 2 / 8);  // 2 bits per kept weight for 2:4
  EXPECT_EQ(pow2.at("w:scale"), 64 * 4);
}

// Unstructured sparsity (alone or on top of N:M) is stored with a bitmap index (FORMAT.md, "Layers"): each row's
// kept codes, rows padded to the fullest one, and one bit per position. The Encoding comes back bit for bit, and
// the integer kernels run such a layer dense (a pruned weight holds the code of zero).
TEST(PackedLayer, UnstructuredSparsityKeepsABitmap) {
  torch::manual_seed(3);
  const at::Tensor w = torch::randn({16, 96});
  for (const char* config :
       {R"({"weight_bits": 4, "sparsity": 0.6})", R"({"weight_bits": 8, "sparsity": 0.3, "nm": "2:4"})",
        R"({"weight_bits": 4, "quantizer": "pow2", "sparsity": 0.5})", R"({"sparsity": 0.5})"}) {
    SCOPED_TRACE(config);
    const LayerConfig c =
        parse_plan(nlohmann::ordered_json{{"defaults", nlohmann::ordered_json::parse(config)}}, "test").defaults;
    const Encoding e = project(w, make_layer(LayerKind::kLinear, {16, 96}), c);
    const OneLayerFile f(e);
    const nlohmann::json h = packed::pack_layer("layer.weight", e).header;
    EXPECT_EQ(h["index"], packed::kBitmapIndexScheme);
    const int64_t fullest = e.mask.sum(1).max().item<int64_t>();
    EXPECT_EQ(h["kept_per_row"], fullest);
    EXPECT_LT(fullest, 96);
    EXPECT_EQ(f.file->tensors().at("layer.weight:index").bytes, 16 * 96 / 8);
    const packed::LayerView& view = *f.view;
    expect_bit_identical(view.encoding(), e, "bitmap");
    at::Tensor decoded = torch::empty({16, 96});
    view.decode_rows(0, 16, decoded.data_ptr<float>());
    EXPECT_TRUE(torch::equal(decoded, e.decode()));
    EXPECT_EQ(view.integer_weights() != nullptr, c.quantized() && c.quantizer == Quantizer::kUniform);
    if (view.integer_weights()) {
      const at::Tensor x = torch::randn({3, 96});
      EXPECT_GT(sqnr_db(x.matmul(e.decode().t()), packed::packed_matmul(view, x, at::Tensor(), nullptr, true)), 30);
    }
    // A row that keeps more than kept_per_row is refused, naming the row.
    packed::PackedLayer damaged = packed::pack_layer("layer.weight", e);
    for (auto& t : damaged.tensors)
      if (t.name == "layer.weight:index") t.bytes.assign(t.bytes.size(), '\xff');
    testing::TempDir tmp;
    packed::write_safetensors(tmp.file("bad.safetensors"), {}, damaged.tensors);
    const auto bad = packed::SafetensorsFile::open(tmp.file("bad.safetensors"));
    expect_error(
        [&] { packed::LayerView(nlohmann::json::parse(damaged.header.dump()), bad->tensors(), "w").encoding(); },
        ErrorKind::kIo, {"corrupted bitmap index in row 0"});
  }
}

// Every layer output of the packed runtime against the simulation's, tapped by the same rule
// (model/tapped_graph.h), for x of exactly the traced batch.
void expect_layers_match(const CompressedModel& m, const PackedModel& p, const at::Tensor& x) {
  std::map<std::string, std::string> layer_of_weight;
  for (const auto& l : m.table.layers) layer_of_weight[l.weight] = l.name;
  const std::vector<LayerOutput> taps = layer_outputs(m.model, layer_of_weight);
  std::vector<const torch::jit::Value*> values;
  for (const auto& t : taps) values.push_back(t.value);
  const TappedGraph::Result simulated = TappedGraph(m.model, values).run(x);
  std::map<std::string, at::Tensor> ran;
  const at::Tensor out = p.forward(x, &ran);
  EXPECT_TRUE(torch::allclose(out, simulated.output, 1e-5, 1e-5));
  ASSERT_EQ(ran.size(), taps.size());
  for (std::size_t i = 0; i < taps.size(); ++i) {
    SCOPED_TRACE(taps[i].key);
    ASSERT_TRUE(ran.count(taps[i].key));
    EXPECT_EQ(ran.at(taps[i].key).sizes(), simulated.values[i].sizes());
    EXPECT_TRUE(torch::allclose(ran.at(taps[i].key), simulated.values[i], 1e-5, 1e-5));
  }
}

// The file's bytes with its model description edited, the checksum made good again (a file corrupted by a
// writer, not by the disk).
std::string with_description(const std::string& bytes, const std::function<void(nlohmann::json&)>& edit) {
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  nlohmann::json header = nlohmann::json::parse(bytes.substr(8, n));
  nlohmann::json adze = nlohmann::json::parse(header["__metadata__"]["adze"].get<std::string>());
  edit(adze);
  const std::string text = adze.dump();
  header["__metadata__"]["adze"] = text;
  header["__metadata__"]["adze_crc32"] =
      packed::hex32(packed::crc32_of(text.data(), static_cast<int64_t>(text.size())));
  std::string h = header.dump();
  while ((h.size() - n) % 64 != 0) h += ' ';  // the data keeps its alignment (safetensors pads with spaces)
  std::string file(8, '\0');
  const uint64_t length = h.size();
  std::memcpy(file.data(), &length, 8);
  return file + h + bytes.substr(8 + n);
}

// `plan` and `pipeline` (JSON) applied to `model`, as adze compress would, kept in memory.
CompressedModel compress_in_memory(Model model, const char* plan, const char* pipeline, const Dataset* data) {
  CompressionContext c;
  c.model = &model;
  c.table = build_layer_table(model);
  c.data = data;
  c.plan = resolve_plan(parse_plan(nlohmann::ordered_json::parse(plan), "plan.json"), c.table, "plan.json");
  const auto records = run_pipeline(parse_pipeline(nlohmann::ordered_json::parse(pipeline), "p.json"), c);
  nlohmann::json report = make_report(c, records);
  LayerTable table = c.table;
  return CompressedModel{"m", std::move(model), std::move(table), c.plan, c.encodings, std::move(report)};
}

// A linear layer on x.view({x.size(0), -1}), traced at batch 4: batch-generic, with the view's [4, -1] fitted
// as [n, -1]. INT8 weights.
CompressedModel view_on_batch_model() {
  torch::manual_seed(0);
  torch::nn::Linear linear(12, 4);
  Model model = trace_module(
      *linear,
      [&](const at::Tensor& x) {
        return linear(x.view({x.size(0), -1}));
      },
      {{4, 3, 4}, "float32"}, "view");
  return compress_in_memory(std::move(model), R"({"defaults": {"weight_bits": 8}})",
                            R"({"passes": ["quantize.weights"]})", nullptr);
}

// A whole model: the fixture CNN (2:4 + INT4 classifier, INT8 convolutions, INT8 activations).
TEST(PackedExporter, RunsTheCompressedModelAndGivesBackItsEncodings) {
  SKIP_UNLESS_ISA_RUNS();
  Compressed c;
  const CompressedModel m = load_compressed(c.dir, 8);
  const std::string out = c.tmp.file("model.adze");
  export_model(m, "packed", nlohmann::json::object(), out);
  const PackedModel p = PackedModel::open(out);
  const auto encodings = p.encodings();
  ASSERT_EQ(encodings.size(), m.encodings.size());
  for (const auto& [name, e] : m.encodings) expect_bit_identical(encodings.at(name), e, name);
  const at::Tensor x = c.data.inputs.slice(0, 0, 20);  // 20: two full batches of 8 and one padded
  const at::Tensor simulated = m.model.forward(x);
  std::map<std::string, at::Tensor> layers;
  const at::Tensor ran = p.forward(x, &layers);
  EXPECT_LE(((ran - simulated).abs().max() / simulated.abs().max()).item<double>(), 1e-5);
  EXPECT_EQ(layers.size(), 3u);
  int packed_matmuls = 0;  // the classifier reads its packed rows; the convolutions get their weights decoded
  for (const auto& n : p.header()["graph"]["nodes"]) packed_matmuls += n["op"] == "adze::packed_matmul";
  EXPECT_EQ(packed_matmuls, 1);
  EXPECT_EQ(layers.at("classifier").size(0), 20);
  expect_layers_match(m, p, x.slice(0, 0, 8));
  // The file is what it weighs: packed weights, plus float biases, activation scales and the header.
  EXPECT_LT(p.weight_bytes(), p.file_bytes());
  // Same model, same bytes.
  export_model(m, "packed", nlohmann::json::object(), c.tmp.file("again.adze"));
  EXPECT_EQ(read_file_text(out), read_file_text(c.tmp.file("again.adze")));
}

// verify's own SQNR: with `from`, each recorded layer output is computed from from's values of the layers before
// it. Given the run's own outputs, nothing changes; given zeros for the first layer, the second is computed from
// them; `from` takes one batch only.
TEST(PackedExporter, LayerOutputsCanComeFromTheSimulation) {
  SKIP_UNLESS_ISA_RUNS();
  Compressed c;
  const CompressedModel m = load_compressed(c.dir, 8);
  export_model(m, "packed", nlohmann::json::object(), c.tmp.file("m.adze"));
  const PackedModel p = PackedModel::open(c.tmp.file("m.adze"));
  const at::Tensor x = c.data.inputs.slice(0, 0, 8);
  std::map<std::string, at::Tensor> ran, same;
  const at::Tensor y = p.forward(x, &ran);
  ASSERT_EQ(ran.size(), 3u);
  EXPECT_TRUE(torch::equal(p.forward(x, &same, &ran), y));
  for (const auto& [key, t] : ran) EXPECT_TRUE(torch::equal(same.at(key), t)) << key;
  // The three layers in a chain: zeros given for one change the next one only (the one after that is computed
  // from ran's value of the next), and the one given is recorded before it is replaced.
  int changed = 0;
  for (const auto& [key, t] : ran) {
    std::map<std::string, at::Tensor> zeros = ran, from_zeros;
    zeros.at(key) = torch::zeros_like(t);
    p.forward(x, &from_zeros, &zeros);
    EXPECT_TRUE(torch::equal(from_zeros.at(key), t)) << key;
    for (const auto& [other, u] : ran) changed += other != key && !torch::equal(from_zeros.at(other), u);
  }
  EXPECT_EQ(changed, 2);
  expect_error([&] { p.forward(c.data.inputs.slice(0, 0, 16), &same, &ran); }, ErrorKind::kInvalidArgument,
               {"m.adze", "one batch of 8"});
}

// A lowrank layer is stored and run as its two factors (FORMAT.md, "Decomposed layers"): a linear layer as two
// packed matmuls on the integer kernels, a convolution as a kh×kw and a 1×1 convolution; the second factor's
// output is the layer's, and the file is smaller than the dense layer would be.
TEST(PackedExporter, LowRankLayersRunAsTheirFactors) {
  SKIP_UNLESS_ISA_RUNS();
  const Compressed c(R"({"defaults": {"weight_bits": 8}, "layers": {
      "features.0": {"decompose": "lowrank", "rank": 4},
      "classifier": {"weight_bits": 4, "decompose": "lowrank", "rank": 4, "nm": "2:4"}}})");
  const CompressedModel m = load_compressed(c.dir, 8);
  const std::string out = c.tmp.file("model.adze");
  export_model(m, "packed", nlohmann::json::object(), out);
  const PackedModel p = PackedModel::open(out);
  const auto stored = p.encodings();
  EXPECT_EQ(stored.count("classifier"), 0u);
  expect_bit_identical(stored.at("classifier#first"), m.encodings.at("classifier").factors[0], "first");
  expect_bit_identical(stored.at("classifier#second"), m.encodings.at("classifier").factors[1], "second");
  EXPECT_EQ(stored.at("features.0#first").shape, (Shape{4, 3, 3, 3}));
  EXPECT_EQ(stored.at("features.0#second").shape, (Shape{8, 4, 1, 1}));
  int packed_matmuls = 0, convolutions = 0;
  for (const auto& n : p.header()["graph"]["nodes"]) {
    packed_matmuls += n["op"] == "adze::packed_matmul";
    convolutions += n["op"] == "aten::_convolution";
  }
  EXPECT_EQ(packed_matmuls, 2);
  EXPECT_EQ(convolutions, 3);  // features.0 as two, features.3
  const at::Tensor x = c.data.inputs.slice(0, 0, 8);
  std::map<std::string, at::Tensor> layers;
  const at::Tensor ran = p.forward(x, &layers);
  EXPECT_GT(sqnr_db(m.model.forward(x), ran), 30);  // the activations are quantized on the way
  EXPECT_TRUE(layers.count("classifier"));
  EXPECT_TRUE(layers.count("features.0"));
  // A plain run computes the linear layer's factors in one call (runtime/fusion.h; equal to two calls:
  // PackedLayer.FactorsInOneCallAreTheTwoCalls). Its convolutions leave channels-last outputs, which the pooling
  // sums in another order than the recording run's: equal up to float rounding.
  EXPECT_TRUE(torch::allclose(p.forward(x), ran, 1e-5, 1e-6));
  int factored = 0;
  for (const auto& n : p.profile(x, 1))
    factored += n.op == "adze::packed_matmul+second" && n.layer == "classifier#first";
  EXPECT_EQ(factored, 1);
}

// A Python-made fixture compressed with `plan` by `passes` (fold-bn, ...), saved and loaded back as `adze
// compress` leaves it, in `tmp`.
CompressedModel compress_fixture(const testing::TempDir& tmp, const std::string& file, const Shape& shape,
                                 const char* plan, const char* passes) {
  Model model = load_torchscript(testing::fixture(file), {shape, "float32"});
  CompressionContext c;
  c.model = &model;
  c.table = build_layer_table(model);
  c.plan = resolve_plan(parse_plan(nlohmann::ordered_json::parse(plan), "plan.json"), c.table, "plan.json");
  const auto records = run_pipeline(
      parse_pipeline(nlohmann::ordered_json::parse(std::string(R"({"passes": )") + passes + "}"), "p.json"), c);
  save_compressed(model, c.plan, c.encodings, make_report(c, records), file, tmp.file("c"));
  return load_compressed(tmp.file("c"), shape[0]);
}

// A decomposed layer of a Python-made fixture: the file, its input, the plan, the layer to check.
struct DecomposedFixture {
  std::string file;
  Shape shape;
  const char* plan;
  std::string layer;
};

// `m` exported packed to tmp/m.adze and opened with fp32 activations (the simulation's numbers); `layer` is
// stored as its two factors, each bit-identical to its Encoding, and not as itself.
PackedModel export_factored(const CompressedModel& m, const std::string& layer, const testing::TempDir& tmp) {
  export_model(m, "packed", nlohmann::json::object(), tmp.file("m.adze"));
  packed::RunOptions exact;
  exact.dynamic_activations = false;
  PackedModel p = PackedModel::open(tmp.file("m.adze"), exact);
  const auto stored = p.encodings();
  EXPECT_EQ(stored.count(layer), 0u);
  expect_bit_identical(stored.at(layer + "#first"), m.encodings.at(layer).factors[0], "first factor");
  expect_bit_identical(stored.at(layer + "#second"), m.encodings.at(layer).factors[1], "second factor");
  return p;
}

// tmp/m.adze with every node of `op` edited by `edit`, written to tmp/bad.adze: opening it fails, naming the
// file, the op and `why`.
void expect_damaged_node_refused(const testing::TempDir& tmp, const std::string& op,
                                 const std::function<void(nlohmann::json&)>& edit, const std::string& why) {
  std::ofstream(tmp.file("bad.adze"), std::ios::binary | std::ios::trunc)
      << with_description(read_file_text(tmp.file("m.adze")), [&](nlohmann::json& adze) {
           for (auto& node : adze["graph"]["nodes"])
             if (node["op"] == op) edit(node);
         });
  expect_error([&] { PackedModel::open(tmp.file("bad.adze")); }, ErrorKind::kIo, {"bad.adze", op, why});
}

// A Monarch layer is stored as its two factors and run as them in one op (FORMAT.md, "Decomposed layers"): a
// linear layer (a Python-traced encoder's), 1x1 convolutions (MobileNet-V2's, and a ResNet-18 downsample of
// stride 2). In fp32 (dynamic activations off) the simulation's numbers; as deployed, on the integer kernels.
TEST(PackedExporter, MonarchLayersRunAsTheirFactors) {
  SKIP_UNLESS_ISA_RUNS();
  for (const auto& [file, shape, plan, layer] : std::vector<DecomposedFixture>{
           {"encoder_traced.pt",
            {4, 10, 16},
            R"({"defaults": {"weight_bits": 8}, "layers": {"linear1": {"decompose": "monarch", "blocks": 4}}})",
            "linear1"},
           {"mobilenet_v2_traced.pt",
            {4, 3, 32, 32},
            R"({"defaults": {"weight_bits": 8}, "layers": {"features.2.conv.0.0": {"decompose": "monarch"},
                "features.2.conv.2": {"decompose": "monarch", "blocks": 2}}})",
            "features.2.conv.0.0"},
           {"resnet18_w4_traced.pt",
            {4, 3, 32, 32},
            R"({"defaults": {"weight_bits": 8}, "layers": {"layer3.0.downsample.0": {"decompose": "monarch"}}})",
            "layer3.0.downsample.0"}}) {
    SCOPED_TRACE(file);
    testing::TempDir tmp;
    const CompressedModel m = compress_fixture(tmp, file, shape, plan, R"(["fold-bn", "quantize.weights"])");
    const PackedModel p = export_factored(m, layer, tmp);
    torch::manual_seed(0);
    const at::Tensor x = torch::randn(std::vector<int64_t>(shape.begin(), shape.end()));
    const at::Tensor simulated = m.model.forward(x);
    EXPECT_LE(((p.forward(x) - simulated).abs().max() / simulated.abs().max()).item<double>(), 1e-5);
    expect_layers_match(m, p, x);
    const PackedModel deployed = PackedModel::open(tmp.file("m.adze"));
    EXPECT_GE(sqnr_db(simulated, deployed.forward(x)), 25.0);
    int monarch = 0;
    for (const auto& n : deployed.profile(x, 1)) monarch += n.op.rfind(packed::kMonarchOp, 0) == 0 && n.integer;
    EXPECT_GE(monarch, 1);
    // A damaged Monarch node is refused when the file is opened, naming what is wrong.
    const auto damaged = [&](const std::function<void(nlohmann::json&)>& edit, const std::string& why) {
      expect_damaged_node_refused(tmp, packed::kMonarchOp, edit, why);
    };
    damaged([](nlohmann::json& n) { n["layer"] = "nowhere"; }, "'nowhere#first', which is missing");
    damaged([](nlohmann::json& n) { n["in"] = nlohmann::json::array({n["in"][0]}); }, "wrong number of inputs");
    damaged(
        [](nlohmann::json& n) {
          n["in"][1] = nlohmann::json::object({{"c", 3}});
        },
        "a bias that is neither a file tensor nor null");
    if (file != "encoder_traced.pt")
      damaged(
          [](nlohmann::json& n) {
            n["in"][2] = nlohmann::json::object({{"c", {0, 1}}});
          },
          "a stride that is not two positive ints");
  }
}

// A SmartDeal layer is stored as its two factors (FORMAT.md, "Decomposed layers"), and its weight is composed
// from them once at open: the simulation's weight exactly, so with fp32 activations the simulation's numbers.
// Linear layers (a Python-traced transformer's, including the attention's packed in-projection) and a 3×3
// convolution (ResNet-18's).
TEST(PackedExporter, SmartDealLayersAreComposedAtOpen) {
  SKIP_UNLESS_ISA_RUNS();
  for (const auto& [file, shape, plan, layer] : std::vector<DecomposedFixture>{
           {"transformer_traced.pt",
            {1, 16, 32},
            R"({"defaults": {"weight_bits": 8}, "layers": {
                "*.out_proj": {"weight_bits": 4, "decompose": "smartdeal", "basis": 4},
                "encoder.layers.0.self_attn.in_proj_weight": {"weight_bits": 4, "decompose": "smartdeal", "basis": 2}}})",
            "encoder.layers.1.self_attn.out_proj"},
           {"resnet18_w4_traced.pt",
            {4, 3, 32, 32},
            R"({"defaults": {"weight_bits": 8}, "layers": {"layer1.0.conv1": {"weight_bits": 4,
                "decompose": "smartdeal", "basis": 3, "sparsity": 0.5}}})",
            "layer1.0.conv1"}}) {
    SCOPED_TRACE(file);
    testing::TempDir tmp;
    const CompressedModel m = compress_fixture(tmp, file, shape, plan, R"(["fold-bn", "quantize.weights"])");
    const PackedModel p = export_factored(m, layer, tmp);
    EXPECT_NE(p.float_layers().at(layer).find("SmartDeal"), std::string::npos);
    int composing = 0;
    for (const auto& n : p.header()["graph"]["nodes"]) composing += n["op"] == packed::kSmartDealOp;
    EXPECT_EQ(composing, file == "transformer_traced.pt" ? 3 : 1);
    torch::manual_seed(0);
    const at::Tensor x = torch::randn(std::vector<int64_t>(shape.begin(), shape.end()));
    const at::Tensor simulated = m.model.forward(x);
    EXPECT_LE(((p.forward(x) - simulated).abs().max() / simulated.abs().max()).item<double>(), 1e-5);
    expect_layers_match(m, p, x);
    EXPECT_GE(sqnr_db(simulated, PackedModel::open(tmp.file("m.adze")).forward(x)), 25.0);
    // A damaged composing node is refused when the file is opened, naming what is wrong.
    const auto damaged = [&](const std::function<void(nlohmann::json&)>& edit, const std::string& why) {
      expect_damaged_node_refused(tmp, packed::kSmartDealOp, edit, why);
    };
    damaged([](nlohmann::json& n) { n["layer"] = "nowhere"; }, "'nowhere', whose two factors are not both stored");
    damaged([](nlohmann::json& n) { n["in"] = nlohmann::json::array({n["in"][0]}); }, "takes a shape and an order");
    damaged([](nlohmann::json& n) { n["in"][2] = nlohmann::json::object({{"c", 5}}); }, "basis 5 that its factors");
    damaged([](nlohmann::json& n) { n["in"][0]["c"][0] = 7; }, "do not fit");
    damaged([](nlohmann::json& n) { n["in"][1]["c"][0] = 1; }, "do not fit");  // not a permutation
  }
}

// Monarch through both factors against the decoded weight: fp32 factors exactly (up to float rounding), 8-bit
// and 2:4 4-bit factors on the integer kernels within their activations' int8 error; one row and several.
TEST(PackedLayer, MonarchOpIsTheDecodedLayer) {
  SKIP_UNLESS_ISA_RUNS();
  torch::manual_seed(4);
  const Layer layer = make_layer(LayerKind::kLinear, {64, 96});
  const at::Tensor w = torch::randn({64, 96}), bias = torch::randn({64});
  for (const char* scheme : {"float", "int8", "2:4-int4"}) {
    SCOPED_TRACE(scheme);
    LayerConfig c;
    c.weight_bits = scheme[0] == 'f' ? 32 : scheme[0] == 'i' ? 8 : 4;
    if (scheme[0] == '2') c.nm = {2, 4};
    c.decompose = Decomposition::kMonarch;
    c.blocks = 4;
    const Encoding e = project(w, layer, c);
    OneLayerFile first(e.factors[0]), second(e.factors[1]);
    for (int64_t rows : {1, 9}) {
      const at::Tensor x = torch::randn({rows, 96});
      const at::Tensor want = torch::addmm(bias, x, e.decode().t());
      const at::Tensor exact = packed::packed_monarch_matmul(*first.view, *second.view, x, bias, false);
      EXPECT_TRUE(torch::allclose(exact, want, 1e-4, 1e-4)) << rows << " rows";
      const at::Tensor fast = packed::packed_monarch_matmul(*first.view, *second.view, x, bias, true);
      EXPECT_GE(sqnr_db(want, fast), scheme[0] == 'f' ? 100.0 : 30.0) << rows << " rows";
    }
  }
}

// A low-rank layer's factors in one call (packed_factored_matmul, as the runtime runs them) give exactly the
// values of two packed_matmul calls: one activation row and several, calibrated and dynamic first inputs, a
// bias and a clamp.
TEST(PackedLayer, FactorsInOneCallAreTheTwoCalls) {
  SKIP_UNLESS_ISA_RUNS();
  torch::manual_seed(3);
  Layer layer = make_layer(LayerKind::kLinear, {64, 96});
  LayerConfig c;
  c.weight_bits = 8;
  c.decompose = Decomposition::kLowRank;
  c.rank = 16;
  const Encoding e = project(torch::randn({64, 96}), layer, c);
  OneLayerFile first(e.factors[0]), second(e.factors[1]);
  ASSERT_TRUE(first.view->integer_weights() && second.view->integer_weights());
  const at::Tensor bias = torch::randn({64});
  const packed::ActivationQuant act{0.05f, 120};
  const packed::OutputClamp relu{0.0f, std::numeric_limits<float>::infinity()};
  for (int64_t rows : {1, 3, 17}) {
    const at::Tensor x = torch::randn({rows, 96});
    for (const packed::ActivationQuant* a : {static_cast<const packed::ActivationQuant*>(nullptr), &act}) {
      const at::Tensor mid = packed::packed_matmul(*first.view, x, {}, a, true);
      const at::Tensor two = packed::packed_matmul(*second.view, mid, bias, nullptr, true, relu);
      EXPECT_TRUE(same_bits(packed::packed_factored_matmul(*first.view, *second.view, x, bias, a, relu), two))
          << rows << " rows";
    }
  }
}

// Models adze did not write (torch.jit.trace / torch.jit.script in Python), with permuted 2:4 + INT4 or INT4.
TEST(PackedExporter, PythonFixturesRunFromThePackedFile) {
  SKIP_UNLESS_ISA_RUNS();
  constexpr const char* kEverywhere = R"({"defaults": {"weight_bits": 4, "nm": "2:4", "permute": true}})";
  constexpr const char* kClassifier =  // the convolutions' 3 and 1 input channels do not divide into groups of 4
      R"({"defaults": {"weight_bits": 4}, "layers": {"classifier": {"nm": "2:4", "permute": true}}})";
  struct Fixture {
    std::string file;
    Shape shape;
    const char* plan;
  };
  constexpr const char* kInt4 = R"({"defaults": {"weight_bits": 4}})";
  for (const auto& [file, shape, plan] : std::vector<Fixture>{{"cnn_bn_scripted.pt", {4, 3, 16, 16}, kClassifier},
                                                              {"encoder_traced.pt", {4, 10, 16}, kEverywhere},
                                                              {"encoder_scripted.pt", {4, 10, 16}, kEverywhere},
                                                              {"resnet18_w4_traced.pt", {4, 3, 32, 32}, kInt4},
                                                              {"mobilenet_v2_traced.pt", {4, 3, 32, 32}, kInt4},
                                                              {"ops_traced.pt", {4, 4, 8, 8}, kInt4}}) {
    SCOPED_TRACE(file);
    testing::TempDir tmp;
    const CompressedModel m =
        compress_fixture(tmp, file, shape, plan, R"(["fold-bn", "sparsity.nm", "quantize.weights"])");
    export_model(m, "packed", nlohmann::json::object(), tmp.file("m.adze"));
    packed::RunOptions exact;  // weight-only layers in fp32: the simulation's numbers
    exact.dynamic_activations = false;
    const PackedModel p = PackedModel::open(tmp.file("m.adze"), exact);
    torch::manual_seed(0);
    std::vector<int64_t> dims(shape.begin(), shape.end());
    dims[0] *= 2;
    const at::Tensor x = torch::randn(dims);
    const at::Tensor simulated = m.model.forward(x);
    EXPECT_LE(((p.forward(x) - simulated).abs().max() / simulated.abs().max()).item<double>(), 1e-5);
    for (const auto& [name, e] : m.encodings) expect_bit_identical(p.encodings().at(name), e, name);
    expect_layers_match(m, p, x.slice(0, 0, shape[0]));
    // As deployed: the linear layers' inputs quantized to int8 per row, the integer kernels. Close, not exact.
    const PackedModel deployed = PackedModel::open(tmp.file("m.adze"));
    EXPECT_GE(sqnr_db(simulated, deployed.forward(x)), 25.0);
    EXPECT_FALSE(deployed.integer_layers().empty()) << "every fixture has linear layers";
    if (file == "mobilenet_v2_traced.pt") {  // depthwise convolutions stay in fp32, and say why
      int depthwise = 0;
      for (const auto& [layer, why] : deployed.float_layers())
        depthwise += why == "a depthwise convolution (fp32, the runtime's own kernel)";
      EXPECT_GT(depthwise, 5);
    }
    // The schedule fused what it should, and the runtime's own kernels replaced ATen's element-wise ops.
    std::string ops;
    for (const auto& n : deployed.profile(x.slice(0, 0, shape[0]), 1)) ops += n.op + " ";
    const std::map<std::string, int> aten = deployed.aten_ops();
    if (file.rfind("encoder", 0) == 0) {
      EXPECT_NE(ops.find("adze::packed_matmul+relu"), std::string::npos) << ops;
      for (const char* op : {"aten::layer_norm", "aten::softmax", "aten::bmm", "aten::relu"})
        EXPECT_EQ(aten.count(op), 0u) << op << " in " << ops;
    }
    if (file == "resnet18_w4_traced.pt") {
      EXPECT_NE(ops.find("aten::_convolution+relu"), std::string::npos) << ops;
    }
    if (file == "mobilenet_v2_traced.pt") {
      EXPECT_NE(ops.find("aten::_convolution+hardtanh"), std::string::npos) << ops;
    }
  }
}

// A causal transformer block (the reference models' block, as fortune-gpt's): its attention, matmul, division,
// masked_fill, softmax and matmul, runs as one op, which skips the keys the mask hides; the result is the
// simulation's, and the unfused graph's up to float rounding.
TEST(PackedExporter, CausalAttentionRunsAsOneOp) {
  SKIP_UNLESS_ISA_RUNS();
  torch::manual_seed(4);
  reference::TransformerBlock block(32, 2, 64, true, 16);
  block->eval();
  Model model = trace_module(
      *block, [&](const at::Tensor& x) { return block->forward(x); }, {{2, 16, 32}, "float32"}, "block");
  const CompressedModel c = compress_in_memory(std::move(model), R"({"defaults": {"weight_bits": 8}})",
                                               R"({"passes": ["quantize.weights"]})", nullptr);
  testing::TempDir tmp;
  export_model(c, "packed", nlohmann::json::object(), tmp.file("m.adze"));
  packed::RunOptions exact;  // weight-only layers in fp32: the simulation's numbers
  exact.dynamic_activations = false;
  const PackedModel p = PackedModel::open(tmp.file("m.adze"), exact);
  const at::Tensor x = torch::randn({2, 16, 32});
  std::string ops;
  for (const auto& n : p.profile(x, 1)) ops += n.op + " ";
  EXPECT_NE(ops.find("aten::matmul+div+masked_fill+softmax+matmul"), std::string::npos) << ops;
  EXPECT_EQ(ops.find("aten::softmax"), std::string::npos) << ops;
  const at::Tensor fused = p.forward(x), simulated = c.model.forward(x);
  std::map<std::string, at::Tensor> layers;  // the unfused graph, as verify runs it
  EXPECT_TRUE(torch::allclose(fused, p.forward(x, &layers), 1e-5, 1e-6));
  EXPECT_LE(((fused - simulated).abs().max() / simulated.abs().max()).item<double>(), 1e-5);
}

// n random images to calibrate the Python-made MobileNet-V2 (32x32, its 1000 classes) on.
Dataset mobilenet_calibration_images(int64_t n) {
  Dataset data;
  data.inputs = torch::randn({n, 3, 32, 32});
  data.targets = torch::zeros({n}, torch::kLong);
  data.num_classes = 1000;
  return data;
}

// A Python-made 32x32 image model (`file` in the fixtures) with INT8 weights and calibrated INT8 activations, BN
// folded, calibrated on 16 random images.
CompressedModel w8a8_fixture(const std::string& file) {
  const Dataset data = mobilenet_calibration_images(16);
  return compress_in_memory(
      load_torchscript(testing::fixture(file), {{4, 3, 32, 32}, "float32"}),
      R"({"defaults": {"weight_bits": 8, "act_bits": 8}})",
      R"({"passes": ["fold-bn", "quantize.weights", {"name": "quantize.calibrate", "options": {"batches": 2}}]})",
      &data);
}

// W8A8 on a Python-made MobileNet-V2: each calibrated fake quantization that follows an integer convolution
// (a depthwise convolution's input) is done in place on that convolution's output, and the fused schedule gives
// the unfused graph's numbers bit for bit.
TEST(PackedExporter, CalibratedFakeQuantsFoldIntoTheConvolutionBeforeThem) {
  SKIP_UNLESS_ISA_RUNS();
  torch::manual_seed(3);
  testing::TempDir tmp;
  const CompressedModel c = w8a8_fixture("mobilenet_v2_traced.pt");
  export_model(c, "packed", nlohmann::json::object(), tmp.file("m.adze"));
  const PackedModel p = PackedModel::open(tmp.file("m.adze"));
  const at::Tensor x = torch::randn({4, 3, 32, 32});
  int folded = 0, alone = 0;  // alone: those whose input another op reads too (a residual's)
  for (const auto& n : p.profile(x, 1)) {
    folded += n.op == "aten::_convolution+hardtanh+fake_quantize";
    alone += n.op == "aten::fake_quantize_per_tensor_affine";
  }
  EXPECT_GE(folded, 10);
  EXPECT_LT(alone, folded);
  std::map<std::string, at::Tensor> layers;  // the unfused graph, as verify runs it
  EXPECT_TRUE(same_bits(p.forward(x), p.forward(x, &layers)));
  const at::Tensor simulated = c.model.forward(x);
  EXPECT_LE(((p.forward(x) - simulated).abs().max() / simulated.abs().max()).item<double>(), 1e-4);
}

// W8A8 on a Python-made ResNet-18: a residual block's add folds into the later of the two convolutions it adds
// (conv2, or the downsample that runs after it), after that convolution's own fake quantization, with its ReLU
// and the calibrated fake quantization of the block's output; the fused schedule gives the unfused graph's
// numbers bit for bit.
TEST(PackedExporter, AResidualAddFoldsIntoItsConvolutionWithReluAndFakeQuantization) {
  SKIP_UNLESS_ISA_RUNS();
  torch::manual_seed(6);
  testing::TempDir tmp;
  const CompressedModel c = w8a8_fixture("resnet18_w4_traced.pt");
  export_model(c, "packed", nlohmann::json::object(), tmp.file("m.adze"));
  const PackedModel p = PackedModel::open(tmp.file("m.adze"));
  const at::Tensor x = torch::randn({4, 3, 32, 32});
  std::map<std::string, int> ops;
  for (const auto& n : p.profile(x, 1)) ++ops[n.op];
  // One per basic block (three into a downsample convolution), each after the fake quantization of the
  // convolution's own output.
  int folded = 0, quantized_after = 0;
  for (const auto& [op, n] : ops) {
    EXPECT_NE(op, "aten::relu");
    EXPECT_NE(op.rfind("aten::add", 0), 0u) << op;
    if (op.rfind("aten::_convolution+fake_quantize+add+relu", 0) != 0) continue;
    folded += n;
    quantized_after += op == "aten::_convolution+fake_quantize+add+relu+fake_quantize" ? n : 0;
  }
  EXPECT_EQ(folded, 8);
  EXPECT_GE(quantized_after, 1);
  // A block's output is read by the next block's convolutions, which quantize it themselves alike, and quantized
  // by its residual add: that fake quantization folds too, and so does the max pool's, into the pool.
  EXPECT_EQ(ops["aten::fake_quantize_per_tensor_affine"], 0);
  EXPECT_EQ(ops["aten::max_pool2d+fake_quantize"], 1);
  std::map<std::string, at::Tensor> layers;  // the unfused graph, as verify runs it
  EXPECT_TRUE(same_bits(p.forward(x), p.forward(x, &layers)));
}

// The kernels split rows, panels and padded input rows over the threads, each value computed the same way on
// any of them: two threads give the bits one gives, calibrated (static) and dynamic activations alike, whichever
// ops a run splits.
TEST(PackedExporter, TwoThreadsGiveTheBitsOfOne) {
  SKIP_UNLESS_ISA_RUNS();
  torch::manual_seed(5);
  const Dataset data = mobilenet_calibration_images(8);
  testing::TempDir tmp;
  const at::Tensor x = torch::randn({4, 3, 32, 32});
  const int threads = torch::get_num_threads();
  for (const char* plan :
       {R"({"defaults": {"weight_bits": 8, "act_bits": 8}})", R"({"defaults": {"weight_bits": 4}})"}) {
    SCOPED_TRACE(plan);
    const bool calibrated = std::string(plan).find("act_bits") != std::string::npos;
    const CompressedModel c = compress_in_memory(
        load_torchscript(testing::fixture("mobilenet_v2_traced.pt"), {{4, 3, 32, 32}, "float32"}), plan,
        calibrated
            ? R"({"passes": ["fold-bn", "quantize.weights", {"name": "quantize.calibrate", "options": {"batches": 2}}]})"
            : R"({"passes": ["fold-bn", "sparsity.nm", "quantize.weights"]})",
        &data);
    const std::string file = tmp.file(calibrated ? "static.adze" : "dynamic.adze");
    export_model(c, "packed", nlohmann::json::object(), file);
    const PackedModel p = PackedModel::open(file);
    torch::set_num_threads(1);
    const at::Tensor one = p.forward(x);
    torch::set_num_threads(2);
    // The first runs time whole runs split, alone and split up to a cut, and the later ones run the choice
    // (runtime/split_choice.h): every run gives the same bits.
    for (int run = 0; run < runtime::SplitChoice::kChoosingRuns + 2; ++run) {
      const at::Tensor two = p.forward(x);
      EXPECT_TRUE(same_bits(one, two)) << "run " << run << ": " << (one - two).abs().max().item<double>();
    }
    torch::set_num_threads(threads);
  }
}

// A weight-only ResNet-18 quantizes each convolution's input to one dynamic range. Where only integer
// convolutions read a convolution's or the max pool's output (a basic block's), its kernels take that range as
// they write it
// (Node::passes_range), and the readers skip reading their input for it: the same bits as a run that takes
// every range from the input itself (a run with `from`, which passes none), on one thread and on two.
TEST(PackedExporter, ConvolutionsPassTheirOutputsRangeToTheConvolutionsThatReadIt) {
  SKIP_UNLESS_ISA_RUNS();
  torch::manual_seed(9);
  testing::TempDir tmp;
  const CompressedModel c = compress_in_memory(
      load_torchscript(testing::fixture("resnet18_w4_traced.pt"), {{2, 3, 32, 32}, "float32"}),
      R"({"defaults": {"weight_bits": 4}})", R"({"passes": ["fold-bn", "quantize.weights"]})", nullptr);
  export_model(c, "packed", nlohmann::json::object(), tmp.file("m.adze"));
  const PackedModel p = PackedModel::open(tmp.file("m.adze"));
  // The second image three times the first's scale: its outputs hold the ranges' ends, and where two threads split
  // the images, the second thread computes them (a range merged without that thread's share would be too narrow).
  const at::Tensor x = torch::randn({2, 3, 32, 32}) * torch::tensor({1.0f, 3.0f}).view({2, 1, 1, 1});
  const int threads = torch::get_num_threads();
  for (int t : {1, 2}) {
    SCOPED_TRACE(std::to_string(t) + " thread(s)");
    torch::set_num_threads(t);
    std::map<std::string, at::Tensor> layers, none;
    const at::Tensor passed = p.forward(x), taken = p.forward(x, &layers, &none);
    EXPECT_TRUE(same_bits(passed, taken)) << (passed - taken).abs().max().item<double>();
  }
  torch::set_num_threads(threads);
}

// Every scheme through the runtime's matmul: the integer kernels where they take the scheme (calibrated
// activations: the simulation's codes, so equal up to float rounding; dynamic: within int8's error), the decoded
// fp32 path everywhere.
TEST(PackedLayer, IntegerKernelsTakeTheSchemesTheyCanAndMatchTheDecodedWeights) {
  SKIP_UNLESS_ISA_RUNS();
  torch::manual_seed(2);
  const Shape shape{24, 96};
  const at::Tensor w = torch::randn({24, 96}), x = torch::randn({5, 96}), bias = torch::randn({24});
  const packed::ActivationQuant act{0.05f, 120};
  const at::Tensor x_fq = torch::fake_quantize_per_tensor_affine(x, act.scale, act.zero_point, 0, 255);
  int integer = 0;
  for (const auto& c : every_scheme()) {
    SCOPED_TRACE(c.name);
    const Encoding e = project(w, make_layer(LayerKind::kLinear, shape), c.config);
    OneLayerFile f(e);
    const at::Tensor decoded = e.decode();
    EXPECT_TRUE(
        torch::allclose(packed::packed_matmul(*f.view, x, bias), torch::addmm(bias, x, decoded.t()), 1e-5, 1e-5));
    const bool takes = c.config.quantized() && c.config.quantizer == Quantizer::kUniform &&
                       !(c.config.weight_bits == 8 && !c.config.symmetric) &&
                       !(c.config.granularity == Granularity::kPerGroup && c.config.group_size % 32 != 0);
    EXPECT_EQ(f.view->integer_weights() != nullptr, takes) << f.view->integer_unsupported();
    if (!takes) continue;
    ++integer;
    const at::Tensor want = torch::addmm(bias, x_fq, decoded.t());
    const at::Tensor got = packed::packed_matmul(*f.view, x, bias, &act);
    EXPECT_LE(((got - want).abs().max() / want.abs().max()).item<double>(), 1e-5);
    EXPECT_GE(sqnr_db(torch::addmm(bias, x, decoded.t()), packed::packed_matmul(*f.view, x, bias, nullptr, true)),
              35.0);
  }
  EXPECT_EQ(integer, 13);
}

// Convolutions through the integer kernels: patches gathered in the encoded (kh, kw, Cin) order, any stride,
// padding and dilation, pointwise ones read as pixels, permuted input channels gathered back. Each on one and on
// two threads, at an input large enough for the patches to be made in parallel: the same bits (a tap row copied
// in chunks once wrote into the next row's bytes, which the other thread had made: a 3x3 convolution of one input
// channel, fmnist-cnn's first layer, differed on two threads).
TEST(PackedLayer, IntegerConvolutionsAreTheConvolutionOfTheDecodedWeights) {
  SKIP_UNLESS_ISA_RUNS();
  torch::manual_seed(3);
  struct Conv {
    Shape shape;
    std::vector<int64_t> stride, padding, dilation;
    const char* nm;
    bool permute;
  };
  const packed::ActivationQuant act{0.04f, 100};
  const int threads = torch::get_num_threads();
  for (const Conv& c : std::vector<Conv>{{{8, 4, 3, 3}, {1, 1}, {1, 1}, {1, 1}, "none", false},
                                         {{6, 8, 3, 3}, {2, 2}, {0, 1}, {1, 1}, "2:4", true},
                                         {{5, 4, 5, 3}, {1, 2}, {2, 1}, {2, 1}, "1:4", false},
                                         {{16, 8, 1, 1}, {2, 2}, {0, 0}, {1, 1}, "2:4", false},
                                         {{16, 8, 1, 1}, {1, 1}, {0, 0}, {1, 1}, "2:4", true},
                                         {{12, 8, 1, 1}, {1, 1}, {0, 0}, {1, 1}, "none", false},
                                         {{8, 8, 1, 1}, {1, 1}, {1, 0}, {1, 1}, "none", false},
                                         {{7, 3, 7, 7}, {2, 2}, {3, 3}, {1, 1}, "none", false},
                                         {{8, 1, 3, 3}, {1, 1}, {1, 1}, {1, 1}, "none", false},
                                         {{256, 32, 3, 3}, {1, 1}, {1, 1}, {1, 1}, "2:4", false},
                                         {{256, 32, 3, 3}, {1, 1}, {1, 1}, {1, 1}, "none", false}}) {
    SCOPED_TRACE(shape_to_string(c.shape) + " " + c.nm + " stride " + std::to_string(c.stride[0]));
    LayerConfig config;
    config.weight_bits = 4;
    config.nm = NMPattern::parse(c.nm);
    config.permute = c.permute;
    Layer layer = make_layer(LayerKind::kConv2d, c.shape);
    const at::Tensor w = torch::randn(std::vector<int64_t>(c.shape.begin(), c.shape.end()));
    const Encoding e = project(w, layer, config);
    OneLayerFile f(e);
    ASSERT_NE(f.view->integer_weights(), nullptr) << f.view->integer_unsupported();
    // One input channel: 3-byte tap rows in rows of a few more bytes; made in parallel only from about 96x80.
    // Many channels at few positions: on two threads, each thread makes every row for itself (the threads split
    // the weights), for the panels (2x4: 16 rows) and for the few-row kernels (1x1: 2 rows).
    const std::vector<int64_t> large = c.shape[1] == 1 ? std::vector<int64_t>{96, 80} : std::vector<int64_t>{48, 40};
    const std::vector<std::vector<int64_t>> sizes = c.shape[0] == 256
                                                        ? std::vector<std::vector<int64_t>>{{2, 4}, {1, 1}}
                                                        : std::vector<std::vector<int64_t>>{{11, 9}, large};
    for (const std::vector<int64_t>& size : sizes) {
      SCOPED_TRACE(std::to_string(size[0]) + "x" + std::to_string(size[1]));
      const at::Tensor x = torch::randn({2, c.shape[1], size[0], size[1]}), bias = torch::randn({c.shape[0]});
      const at::Tensor want =
          torch::conv2d(torch::fake_quantize_per_tensor_affine(x, act.scale, act.zero_point, 0, 255), e.decode(), bias,
                        c.stride, c.padding, c.dilation);
      const at::Tensor exact = torch::conv2d(x, e.decode(), bias, c.stride, c.padding, c.dilation);
      at::Tensor first_static, first_dynamic;
      for (int t : {1, 2}) {
        torch::set_num_threads(t);
        const at::Tensor got = packed::packed_conv2d(*f.view, x, bias, c.stride, c.padding, c.dilation, &act, true);
        const at::Tensor dynamic =
            packed::packed_conv2d(*f.view, x, bias, c.stride, c.padding, c.dilation, nullptr, true);
        // The input channels last in memory: the same bits.
        const at::Tensor nhwc = x.contiguous(at::MemoryFormat::ChannelsLast);
        const at::Tensor got_nhwc =
            packed::packed_conv2d(*f.view, nhwc, bias, c.stride, c.padding, c.dilation, &act, true);
        const at::Tensor dynamic_nhwc =
            packed::packed_conv2d(*f.view, nhwc, bias, c.stride, c.padding, c.dilation, nullptr, true);
        torch::set_num_threads(threads);
        EXPECT_TRUE(same_bits(got, got_nhwc));
        EXPECT_TRUE(same_bits(dynamic, dynamic_nhwc));
        ASSERT_EQ(got.sizes(), want.sizes());
        EXPECT_LE(((got - want).abs().max() / want.abs().max()).item<double>(), 1e-5);
        EXPECT_GE(sqnr_db(exact, dynamic), 30.0);
        if (t == 1) {
          first_static = got;
          first_dynamic = dynamic;
          continue;
        }
        EXPECT_TRUE(same_bits(first_static, got));
        EXPECT_TRUE(same_bits(first_dynamic, dynamic));
      }
    }
  }
}

// What fusion.h folds into a layer's outputs (packed::OutputOps): the residual add (after the branch's own fake
// quantization, as a W8A8 model has it), the clamp, the output's fake quantization, with the bits of the unfused
// ops. A residual of the output's shape in either memory layout goes to the kernels' epilogue; one that
// broadcasts is added after the product, as ATen adds it.
TEST(PackedLayer, IntegerKernelsDoTheOutputOpsAsTheUnfusedOpsDo) {
  SKIP_UNLESS_ISA_RUNS();
  torch::manual_seed(8);
  LayerConfig config;
  config.weight_bits = 4;
  config.nm = NMPattern::parse("2:4");
  const packed::ActivationQuant branch{0.03f, 117}, output{0.02f, 3};
  const auto fq = [](const at::Tensor& t, const packed::ActivationQuant& q) {
    return torch::fake_quantize_per_tensor_affine(t, q.scale, q.zero_point, 0, 255);
  };
  const auto ops = [&](const at::Tensor& r, bool quantized) {
    packed::OutputOps out{packed::OutputClamp{0.0f, std::numeric_limits<float>::infinity()}};
    out.residual.add = r;
    if (quantized) {
      out.residual.quant = branch;
      out.quant = output;
    }
    return out;
  };
  const auto unfused = [&](const at::Tensor& y, const at::Tensor& r, bool quantized) {
    const at::Tensor sum = ((quantized ? fq(y, branch) : y) + r).clamp_min(0);
    return quantized ? fq(sum, output) : sum;
  };
  const Encoding conv = project(torch::randn({16, 8, 3, 3}), make_layer(LayerKind::kConv2d, {16, 8, 3, 3}), config);
  OneLayerFile fc(conv);
  const at::Tensor x = torch::randn({2, 8, 12, 10}), bias = torch::randn({16});
  const at::Tensor plain = packed::packed_conv2d(*fc.view, x, bias, {1, 1}, {1, 1}, {1, 1}, nullptr, true);
  const at::Tensor same = torch::randn({2, 16, 12, 10});
  for (const at::Tensor& r : {same, same.contiguous(at::MemoryFormat::ChannelsLast), torch::randn({1, 16, 1, 1})})
    for (bool quantized : {false, true})
      for (bool contiguous_out : {true, false}) {
        SCOPED_TRACE(c10::str(r.sizes(), quantized ? " quantized" : "", contiguous_out ? " contiguous" : ""));
        EXPECT_TRUE(same_bits(packed::packed_conv2d(*fc.view, x, bias, {1, 1}, {1, 1}, {1, 1}, nullptr, true,
                                                    ops(r, quantized), contiguous_out),
                              unfused(plain, r, quantized)));
      }
  const Encoding linear = project(torch::randn({24, 64}), make_layer(LayerKind::kLinear, {24, 64}), config);
  OneLayerFile fl(linear);
  const at::Tensor rows = torch::randn({3, 5, 64}), b = torch::randn({24});
  for (const at::Tensor& r : {torch::randn({3, 5, 24}), torch::randn({24})})
    for (bool quantized : {false, true})
      for (bool integer : {true, false}) {
        SCOPED_TRACE(c10::str(r.sizes(), quantized ? " quantized" : "", integer ? " integer" : " fp32"));
        EXPECT_TRUE(same_bits(packed::packed_matmul(*fl.view, rows, b, nullptr, integer, ops(r, quantized)),
                              unfused(packed::packed_matmul(*fl.view, rows, b, nullptr, integer), r, quantized)));
      }
}

TEST(PackedModel, RejectsTruncatedCorruptedAndForeignFiles) {
  Compressed c;
  const CompressedModel m = load_compressed(c.dir, 8);
  const std::string good = c.tmp.file("model.adze");
  export_model(m, "packed", nlohmann::json::object(), good);
  const std::string bytes = read_file_text(good);
  const std::string bad = c.tmp.file("bad.adze");
  auto write = [&](const std::string& contents) { std::ofstream(bad, std::ios::binary | std::ios::trunc) << contents; };
  write(bytes.substr(0, 5));
  expect_error([&] { PackedModel::open(bad); }, ErrorKind::kIo, {"bad.adze", "truncated"});
  write(bytes.substr(0, 200));
  expect_error([&] { PackedModel::open(bad); }, ErrorKind::kIo, {"truncated"});
  write(bytes.substr(0, bytes.size() - 3));
  expect_error([&] { PackedModel::open(bad); }, ErrorKind::kIo, {"truncated"});
  std::string flipped = bytes;
  flipped[flipped.size() - 10] = static_cast<char>(flipped[flipped.size() - 10] ^ 0x10);
  write(flipped);
  expect_error([&] { PackedModel::open(bad); }, ErrorKind::kIo, {"checksum"});
  // A well-formed file whose graph has an op that fails on its constant arguments (a slice of a file tensor
  // along a dimension it lacks): refused when opened, naming the op, not at the first run.
  write(with_description(bytes, [](nlohmann::json& adze) {
    std::string tensor;
    for (const auto& node : adze["graph"]["nodes"])
      for (const auto& in : node["in"])
        if (tensor.empty() && in.contains("t")) tensor = in["t"].get<std::string>();
    ASSERT_FALSE(tensor.empty());
    auto& nodes = adze["graph"]["nodes"];
    nodes.insert(nodes.begin(),
                 nlohmann::json{{"op", "aten::slice"},
                                {"overload", "Tensor"},
                                {"in", {{{"t", tensor}}, {{"c", 7}}, {{"c", 0}}, {{"c", 1}}, {{"c", 1}}}},
                                {"out", {"never_read"}}});
  }));
  expect_error([&] { PackedModel::open(bad); }, ErrorKind::kIo, {"bad.adze", "aten::slice", "constant arguments"});
  write("not a packed file at all, just text");
  expect_error([&] { PackedModel::open(bad); }, ErrorKind::kIo, {"bad.adze"});
  // A plain safetensors file (no adze metadata).
  packed::write_safetensors(c.tmp.file("plain.safetensors"), {}, {{"x", "F32", {2}, std::string(8, '\0')}});
  expect_error([&] { PackedModel::open(c.tmp.file("plain.safetensors")); }, ErrorKind::kIo,
               {"not an adze packed file"});
  expect_error([&] { PackedModel::open(c.tmp.file("missing.adze")); }, ErrorKind::kIo, {"missing.adze"});
}

// ATen operators are found in the dispatcher's table; the few that only TorchScript's interpreter implements
// (aten::Int.float here) in its registry; a name in neither is refused at open, naming the node.
TEST(PackedModel, OperatorsComeFromTheDispatcherOrTheInterpretersRegistry) {
  Compressed c;
  const CompressedModel m = load_compressed(c.dir, 8);
  const std::string good = c.tmp.file("model.adze"), edited = c.tmp.file("edited.adze");
  export_model(m, "packed", nlohmann::json::object(), good);
  const auto with_op = [&](const std::string& op, const std::string& overload) {
    std::ofstream(edited, std::ios::binary | std::ios::trunc)
        << with_description(read_file_text(good), [&](nlohmann::json& adze) {
             auto& nodes = adze["graph"]["nodes"];
             nodes.insert(nodes.begin(), nlohmann::json{{"op", op},
                                                        {"overload", overload},
                                                        {"in", {{{"c", 2.5}, {"kind", "float"}}}},
                                                        {"out", {"never_read"}}});
           });
  };
  const at::Tensor x = c.data.inputs.slice(0, 0, 8);
  const at::Tensor expected = PackedModel::open(good).forward(x);
  with_op("aten::Int", "float");
  EXPECT_TRUE(torch::equal(PackedModel::open(edited).forward(x), expected));
  with_op("aten::no_such_op", "");
  expect_error([&] { PackedModel::open(edited); }, ErrorKind::kIo,
               {"edited.adze", "aten::no_such_op", "not an operator this libtorch knows"});
}

// Random damage — flipped bytes, cut files, inserted bytes — is either rejected with adze::Error(kIo) or (where
// it hit only header padding) leaves the model intact. Never a crash, never wrong weights.
TEST(PackedModel, FuzzedFilesAreRejectedOrIntact) {
  Compressed c;
  const CompressedModel cnn = load_compressed(c.dir, 8), view = view_on_batch_model();
  // Two seeds: the fixture CNN, and a batch-generic file whose view has a batch fit.
  const std::string good = c.tmp.file("model.adze"), generic = c.tmp.file("generic.adze");
  export_model(cnn, "packed", nlohmann::json::object(), good);
  export_model(view, "packed", {{"dynamic_batch", true}}, generic);
  ASSERT_TRUE(PackedModel::open(generic).batch_generic());
  std::mt19937 rng(7);
  const std::string bad = c.tmp.file("fuzz.adze");
  int rejected = 0, intact = 0;
  for (int i = 0; i < 400; ++i) {
    const bool seed_cnn = i < 300;
    const CompressedModel& m = seed_cnn ? cnn : view;
    const std::string bytes = read_file_text(seed_cnn ? good : generic);
    std::string mutated = bytes;
    const auto pos = std::uniform_int_distribution<std::size_t>(0, bytes.size() - 1)(rng);
    switch (i % 3) {
      case 0:
        mutated[pos] = static_cast<char>(mutated[pos] ^ (1 + rng() % 255));
        break;
      case 1:
        mutated.resize(pos);
        break;
      case 2:
        mutated.insert(pos, 1, static_cast<char>(rng() % 256));
        break;
    }
    std::ofstream(bad, std::ios::binary | std::ios::trunc) << mutated;
    try {
      const PackedModel p = PackedModel::open(bad);
      const auto encodings = p.encodings();
      for (const auto& [name, e] : m.encodings)
        expect_bit_identical(encodings.at(name), e, "mutation " + std::to_string(i));
      ++intact;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kIo) << e.what();
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 330);
  RecordProperty("intact", intact);
}

// A batch-generic file (dynamic_batch) of the Python-traced nn.TransformerEncoder (input [n, 16, 32]; attention
// views q, k, v as [16, 4n, 8]), compressed and traced at batch 4, runs batches of 1, 3 and 7 each in one call
// at that size: bit for bit what the file exported at that very batch size computes (outputs and every layer's
// output, deployed and exact), and the simulation's numbers.
TEST(PackedExporter, DynamicBatchFileRunsAnyBatchAsTheFileTracedAtIt) {
  SKIP_UNLESS_ISA_RUNS();
  const Dataset data = load_dataset("tensors:" + testing::fixture("tensors_tokens.pt"), {"train", 0, 0});
  struct Plan {
    const char* name;
    const char* plan;
    const char* pipeline;
  };
  for (const auto& [name, plan, pipeline] : std::vector<Plan>{
           {"w8a8", R"({"defaults": {"weight_bits": 8, "act_bits": 8}})",
            R"({"passes": ["quantize.weights", {"name": "quantize.calibrate", "options": {"batches": 2}}]})"},
           {"2:4-int4", R"({"defaults": {"weight_bits": 4, "nm": "2:4"}})",
            R"({"passes": ["sparsity.nm", "quantize.weights"]})"}}) {
    SCOPED_TRACE(name);
    testing::TempDir tmp;
    const CompressedModel c = compress_in_memory(
        load_torchscript(testing::fixture("transformer_traced.pt"), {{4, 16, 32}, "float32"}), plan, pipeline, &data);
    save_compressed(c.model, c.plan, c.encodings, c.report, "transformer_traced.pt", tmp.file("c"));
    const CompressedModel m = load_compressed(tmp.file("c"), 4);
    ASSERT_TRUE(m.model.batch_dependence().generic) << m.model.batch_dependence().why_not;
    export_model(m, "packed", {{"dynamic_batch", true}}, tmp.file("any.adze"));
    packed::RunOptions exact;  // weight-only layers in fp32: the simulation's numbers
    exact.dynamic_activations = false;
    const PackedModel any = PackedModel::open(tmp.file("any.adze"));
    const PackedModel any_exact = PackedModel::open(tmp.file("any.adze"), exact);
    EXPECT_TRUE(any.batch_generic());
    EXPECT_EQ(any.batch(), 0);
    EXPECT_EQ(any.input().shape, (Shape{4, 16, 32}));
    EXPECT_EQ(any.header()["input"]["batch"], "any");
    // Per layer: q, k and v viewed as [16, 4n, 8], the heads joined as [16n, 32] and the output as [16, n, 32].
    int fits = 0;
    for (const auto& node : any.header()["graph"]["nodes"])
      for (const auto& in : node["in"]) fits += in.contains("batch");
    EXPECT_EQ(fits, 10);
    for (const auto& [layer, e] : m.encodings) expect_bit_identical(any.encodings().at(layer), e, layer);
    for (int64_t n : {1, 3, 7}) {
      SCOPED_TRACE("batch " + std::to_string(n));
      torch::manual_seed(static_cast<uint64_t>(n));
      const at::Tensor x = torch::randn({n, 16, 32});
      const std::string at_n = tmp.file("at" + std::to_string(n) + ".adze");
      export_model(load_compressed(tmp.file("c"), n), "packed", nlohmann::json::object(), at_n);
      const PackedModel fixed = PackedModel::open(at_n), fixed_exact = PackedModel::open(at_n, exact);
      ASSERT_EQ(fixed.batch(), n);
      const at::Tensor deployed = any.forward(x);
      EXPECT_TRUE(same_bits(deployed, fixed.forward(x)));
      EXPECT_TRUE(same_bits(any.forward(x), deployed)) << "a second call, on the schedule kept for this batch size";
      std::map<std::string, at::Tensor> got, want;
      const at::Tensor out = any_exact.forward(x, &got);
      EXPECT_TRUE(same_bits(out, fixed_exact.forward(x, &want)));
      ASSERT_EQ(got.size(), want.size());
      for (const auto& [key, t] : want) {
        ASSERT_TRUE(got.count(key)) << key;
        EXPECT_TRUE(same_bits(got.at(key), t)) << key;  // sizes too: attention's [16, n, ...] in one piece
      }
      const at::Tensor simulated = m.model.forward(x);
      EXPECT_LE(((out - simulated).abs().max() / simulated.abs().max()).item<double>(), 1e-5);
      EXPECT_GE(sqnr_db(simulated, deployed), 25.0);
      EXPECT_FALSE(any.profile(x, 1).empty());  // any batch size, where a fixed file takes only its own
    }
  }
}

// Refused at export: a model whose graph holds at its traced batch only (another op at odd batch sizes).
TEST(PackedExporter, DynamicBatchRefusesABatchSpecialisedModel) {
  testing::TempDir tmp;
  torch::manual_seed(0);
  torch::nn::Linear linear(12, 4);
  Model model = trace_module(
      *linear,
      [&](const at::Tensor& x) {
        const at::Tensor y = linear(x.flatten(1));
        return x.size(0) % 2 == 0 ? y.relu() : y.sigmoid();
      },
      {{4, 3, 4}, "float32"}, "odd");
  ASSERT_FALSE(model.batch_dependence().generic);
  const CompressedModel m = compress_in_memory(std::move(model), R"({"defaults": {"weight_bits": 8}})",
                                               R"({"passes": ["quantize.weights"]})", nullptr);
  const std::string out = tmp.file("odd.adze");
  try {
    export_model(m, "packed", {{"dynamic_batch", true}}, out);
    ADD_FAILURE() << "a batch-specialised model exported with dynamic_batch";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    for (const char* part : {"dynamic_batch", "batch size 4 only", "differs from the one at 4"})
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(out));
  export_model(m, "packed", nlohmann::json::object(), out);  // fixed at its batch, as always
  EXPECT_EQ(PackedModel::open(out).batch(), 4);
}

// A batch-generic file with a batch-dependent view ([n, -1]) runs any batch, and one whose fits are damaged
// (non-integer, too few or too many, not the stored value at the traced batch, on a file not marked batch-generic)
// is refused at open with one line naming the file, the op and the field.
TEST(PackedModel, DynamicBatchFitsAreCheckedAtOpen) {
  testing::TempDir tmp;
  const CompressedModel m = view_on_batch_model();
  const std::string good = tmp.file("view.adze");
  export_model(m, "packed", {{"dynamic_batch", true}}, good);
  const PackedModel p = PackedModel::open(good);
  for (int64_t n : {1, 3, 7}) {
    torch::manual_seed(static_cast<uint64_t>(n));
    const at::Tensor x = torch::randn({n, 3, 4});
    EXPECT_TRUE(torch::allclose(p.forward(x), m.model.forward(x), 1e-5, 1e-5)) << "batch " << n;
  }
  expect_error([&] { p.forward(torch::randn({2, 4, 3})); }, ErrorKind::kInvalidArgument, {"view.adze", "dimension 1"});
  const std::string bytes = read_file_text(good);
  // The view's size list [4, -1] at batch 4, fitted as [n, -1].
  auto fit_of = [](nlohmann::json& adze) -> nlohmann::json& {
    for (auto& node : adze["graph"]["nodes"])
      for (auto& in : node["in"])
        if (in.contains("batch")) return in;
    throw std::runtime_error("no fit");
  };
  nlohmann::json description = p.header();
  ASSERT_EQ(fit_of(description)["batch"], nlohmann::json::parse("[[1, 0], [0, -1]]"));
  struct Damage {
    const char* what;
    std::function<void(nlohmann::json&)> edit;
    std::vector<std::string> message;
  };
  const std::vector<Damage> damages = {
      {"a non-integer slope",
       [&](nlohmann::json& a) { fit_of(a)["batch"][0][0] = 1.5; },
       {"argument", "batch fit pair 0 is [1.5,0]", "two integers"}},
      {"a string",
       [&](nlohmann::json& a) {
         fit_of(a)["batch"][1] = {"0", -1};
       },
       {"batch fit pair 1", "two integers"}},
      {"a pair short", [&](nlohmann::json& a) { fit_of(a)["batch"][1] = {0}; }, {"batch fit pair 1", "[a, b]"}},
      {"a pair missing", [&](nlohmann::json& a) { fit_of(a)["batch"].erase(1); }, {"expected 2 [a, b] pair(s)"}},
      {"a pair too many",
       [&](nlohmann::json& a) {
         fit_of(a)["batch"].push_back({0, 1});
       },
       {"expected 2 [a, b]"}},
      {"not a list", [&](nlohmann::json& a) { fit_of(a)["batch"] = 4; }, {"expected 2 [a, b] pair(s)"}},
      {"a huge slope",
       [&](nlohmann::json& a) {
         fit_of(a)["batch"][0] = {int64_t{1} << 62, 0};
       },
       {"below 2^40"}},
      {"another value at the traced batch",
       [&](nlohmann::json& a) {
         fit_of(a)["batch"][0] = {2, 0};
       },
       {"gives 8 at the traced batch 4, the constant holds 4"}},
      {"a fit on a file not marked batch-generic",
       [&](nlohmann::json& a) { a["input"].erase("batch"); },
       {"input.batch is not \"any\""}},
      {"another input batch", [&](nlohmann::json& a) { a["input"]["batch"] = "some"; }, {"input.batch is \"some\""}},
  };
  const std::string bad = tmp.file("bad.adze");
  for (const Damage& d : damages) {
    SCOPED_TRACE(d.what);
    std::ofstream(bad, std::ios::binary | std::ios::trunc) << with_description(bytes, d.edit);
    try {
      PackedModel::open(bad);
      ADD_FAILURE() << "opened";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_EQ(e.kind(), ErrorKind::kIo) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
      EXPECT_NE(what.find("bad.adze"), std::string::npos) << what;
      for (const auto& part : d.message) EXPECT_NE(what.find(part), std::string::npos) << what;
    }
  }
}

}  // namespace
}  // namespace adze
