// verify() as a library: an export checked against its simulation, thresholds resolved, bad options refused.
#include "exporters/verify.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "exporters/compressed_fixture.h"
#include "exporters/exporter.h"

namespace adze {
namespace {

using testing::Compressed;

VerifyOptions options_for(const Compressed& c, const std::string& exported) {
  VerifyOptions o;
  o.exported = exported;
  o.against = c.dir;
  o.data = "tensors:" + testing::fixture("tensors_small.pt");
  o.split = "train";
  return o;
}

TEST(Verify, APackedExportAgreesLayerByLayerWithItsSimulation) {
  Compressed c;
  const CompressedModel m = load_compressed(c.dir, 8);
  const std::string out = c.tmp.file("m.adze");
  export_model(m, "packed", nlohmann::json::object(), out);
  VerifyOptions o = options_for(c, out);
  o.activations = "float";
  const Verification v = verify(o);
  EXPECT_TRUE(v.pass);
  EXPECT_EQ(v.format, "packed");
  EXPECT_EQ(v.samples, 40);  // the train split, whole batches of 8
  EXPECT_EQ(v.argmax_agreement, 1.0);
  EXPECT_EQ(v.simulated.top1, v.exported.top1);
  ASSERT_FALSE(v.layers.empty());  // the packed runtime exposes every layer
  for (const auto& [layer, a] : v.layers) EXPECT_GE(a.sqnr_db(), 40.0) << layer;
  ASSERT_EQ(v.own_layers.size(), v.layers.size());  // each layer also from the simulation's inputs
  for (const auto& [layer, a] : v.own_layers) EXPECT_GE(a.sqnr_db(), 40.0) << layer;
  // Defaults resolved for an exact runtime; the JSON says what was measured against what.
  EXPECT_EQ(v.options.min_agreement, 0.995);
  EXPECT_EQ(v.options.min_layer_sqnr, 40.0);
  const nlohmann::json j = to_json(v);
  EXPECT_EQ(j["pass"], true);
  EXPECT_EQ(j["layers"].size(), v.layers.size());
  EXPECT_TRUE(j["layers"][0].contains("own_sqnr_db"));
  EXPECT_EQ(j["thresholds"]["min_cosine"], 0.999);

  // A threshold no export can meet fails the check without an error.
  o.min_cosine = 1.0;
  o.min_layer_sqnr = 1e9;
  EXPECT_FALSE(verify(o).pass);
}

TEST(Verify, BadOptionsAreRefused) {
  Compressed c;
  const auto refused = [&](const VerifyOptions& o, const std::string& what) {
    try {
      (void)verify(o);
      ADD_FAILURE() << "accepted: " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  VerifyOptions o = options_for(c, c.tmp.file("none.adze"));
  o.min_agreement = 1.5;
  refused(o, "--min-agreement");
  o = options_for(c, c.tmp.file("none.adze"));
  o.min_cosine = -2;
  refused(o, "--min-cosine");
  refused(options_for(c, c.tmp.file("model.tflite")), "model.tflite");
}

}  // namespace
}  // namespace adze
