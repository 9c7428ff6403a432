#include "compress/plan.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "model/layer_table.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using Json = nlohmann::ordered_json;
using testing::expect_error;

LayerTable table_of(std::vector<std::pair<std::string, Shape>> layers) {
  LayerTable t;
  for (auto& [name, shape] : layers) {
    Layer l;
    l.name = name;
    l.weight = name + ".weight";
    l.kind = shape.size() == 4 ? LayerKind::kConv2d : LayerKind::kLinear;
    l.weight_shape = shape;
    l.reduction_size = shape[1];
    t.layers.push_back(l);
  }
  return t;
}

const LayerTable kTable = table_of({{"features.0", {32, 16, 3, 3}},
                                    {"features.3", {64, 32, 3, 3}},
                                    {"classifier.0", {128, 3136}},
                                    {"classifier.3", {10, 128}}});

TEST(Plan, DefaultsThenSelectorsInFileOrder) {
  Json doc = Json::parse(R"({
    "defaults": {"weight_bits": 8, "act_bits": 8},
    "layers": {
      "features.*": {"weight_bits": 4, "nm": "2:4"},
      "re:classifier\\.[0-9]+": {"granularity": "tensor"},
      "classifier.3": {"weight_bits": 16, "act_bits": "none"}
    }})");
  ResolvedPlan r = resolve_plan(parse_plan(doc, "p.json"), kTable, "p.json");
  EXPECT_TRUE(r.warnings.empty());
  EXPECT_EQ(r.layers.at("features.3").weight_bits, 4);
  EXPECT_EQ(r.layers.at("features.3").nm, (NMPattern{2, 4}));
  EXPECT_EQ(r.layers.at("features.3").act_bits, 8);
  EXPECT_EQ(r.layers.at("classifier.0").weight_bits, 8);
  EXPECT_EQ(r.layers.at("classifier.0").granularity, Granularity::kPerTensor);
  EXPECT_EQ(r.layers.at("classifier.3").weight_bits, 16);
  EXPECT_EQ(r.layers.at("classifier.3").act_bits, 0);
  EXPECT_EQ(r.layers.at("classifier.3").granularity, Granularity::kPerTensor);  // earlier selector still applies
}

TEST(Plan, AppliedPlanRoundTripsThroughJson) {
  Json doc = Json::parse(R"({"defaults": {"weight_bits": 4, "scale_method": "mse", "nm": "1:4", "sparsity": 0.1}})");
  ResolvedPlan r = resolve_plan(parse_plan(doc, "p.json"), kTable, "p.json");
  ResolvedPlan again = resolve_plan(parse_plan(to_json(r), "applied.json"), kTable, "applied.json");
  EXPECT_EQ(again.layers, r.layers);
  EXPECT_EQ(to_json(again).dump(), to_json(r).dump());
}

TEST(Plan, SelectorMatchingNothingIsAWarning) {
  Json doc = Json::parse(R"({"layers": {"encoder.*": {"weight_bits": 4}}})");
  ResolvedPlan r = resolve_plan(parse_plan(doc, "p.json"), kTable, "p.json");
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("'encoder.*' matches no layer"), std::string::npos);
}

TEST(Plan, ErrorsNameTheFileSelectorAndField) {
  auto parse = [](const std::string& text) { return parse_plan(Json::parse(text), "p.json"); };
  expect_error([&] { parse(R"({"defaults": {"weight_bits": "four"}})"); }, ErrorKind::kInvalidConfig,
               {"'p.json' defaults field weight_bits", "expected an integer"});
  expect_error([&] { parse(R"({"defaults": {"bits": 4}})"); }, ErrorKind::kInvalidConfig,
               {"unknown field 'bits'", "weight_bits"});
  expect_error([&] { parse(R"({"layers": {"fc": {"nm": "4:2"}}})"); }, ErrorKind::kInvalidConfig,
               {"layers['fc'] field nm", "4:2"});
  expect_error([&] { parse(R"({"layers": {"fc": {"granularity": "row"}}})"); }, ErrorKind::kInvalidConfig, {"\"row\""});
  expect_error([&] { parse(R"({"layers": {"re:(": {}}})"); }, ErrorKind::kInvalidConfig,
               {"invalid regular expression"});
  // Found by fuzzing: a long back-reference number is undefined behaviour inside libstdc++'s regex compiler.
  expect_error([&] { parse(R"({"layers": {"re:a\\5555555555555555555": {}}})"); }, ErrorKind::kInvalidConfig,
               {"back-references (\\5) are not supported"});
  expect_error([&] { parse(R"({"layers": {"re:)" + std::string(300, 'a') + R"(": {}}})"); }, ErrorKind::kInvalidConfig,
               {"longer than 256 characters"});
  EXPECT_NO_THROW(parse(R"({"layers": {"re:layer\\.[0-9]+": {}}})"));  // escapes other than digits still work
  expect_error([&] { parse(R"({"defaults": {"sparsity": null}})"); }, ErrorKind::kInvalidConfig,
               {"sparsity", "expected a number"});
  expect_error([&] { parse(R"([1, 2])"); }, ErrorKind::kInvalidConfig, {"'p.json'"});
  expect_error([&] { parse(R"({"default": {}})"); }, ErrorKind::kInvalidConfig, {"unknown key 'default'"});
}

TEST(Plan, ConfigsThatCannotApplyAreErrorsBeforeWorkListingEveryLayer) {
  Json doc =
      Json::parse(R"({"defaults": {"weight_bits": 4, "nm": "3:6"}, "layers": {"features.0": {"weight_bits": 12}}})");
  Plan plan = parse_plan(doc, "p.json");
  expect_error(
      [&] { resolve_plan(plan, kTable, "p.json"); }, ErrorKind::kInvalidConfig,
      {"layer 'features.0' field weight_bits 12", "layer 'classifier.3' field nm 3:6: reduction dimension 128"});
}

TEST(Plan, LoadNamesAFileThatIsNotJson) {
  testing::TempDir dir;
  std::ofstream(dir.file("p.json")) << "{\"defaults\": {\"weight_bits\": 4,}";
  expect_error([&] { load_plan(dir.file("p.json")); }, ErrorKind::kInvalidConfig, {"p.json", "not JSON"});
  expect_error([&] { load_plan(dir.file("missing.json")); }, ErrorKind::kIo, {"missing.json"});
}

TEST(Plan, FuzzedDocumentsParseOrThrowInvalidConfig) {
  std::mt19937 rng(11);
  const std::vector<std::string> keys = {"weight_bits", "nm",         "granularity", "act_bits",
                                         "sparsity",    "group_size", "bogus",       "symmetric"};
  const std::vector<Json> values = {Json(4),   Json(-1),   Json("2:4"),   Json("x"),   Json(nullptr),
                                    Json(0.5), Json(true), Json::array(), Json(1e300), Json("channel")};
  for (int i = 0; i < 3000; ++i) {
    Json fields = Json::object();
    for (int k = 0; k < 3; ++k) fields[keys[rng() % keys.size()]] = values[rng() % values.size()];
    Json doc = rng() % 2 ? Json{{"defaults", fields}} : Json{{"layers", {{"features.*", fields}}}};
    try {
      ResolvedPlan r = resolve_plan(parse_plan(doc, "fuzz.json"), kTable, "fuzz.json");
      for (const auto& [name, c] : r.layers)
        EXPECT_TRUE(c.weight_bits <= 8 || c.weight_bits == 16 || c.weight_bits == 32);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidConfig) << e.what();
    }
  }
}

}  // namespace
}  // namespace adze
