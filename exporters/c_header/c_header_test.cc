#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "core/files.h"
#include "exporters/c_header/c_program.h"
#include "exporters/compressed_fixture.h"
#include "exporters/exporter.h"

namespace adze {
namespace {

using testing::Compressed;
using testing::expect_error;

// The fixture CNN (convolutions with folded batch norm, relu, global average pooling, linear): INT8 weights and
// activations, the classifier 2:4 + INT4. Exported, compiled with cc -std=c99 -Wall -Wextra -Werror, and run.
TEST(CHeaderExporter, CompilesAndComputesTheSimulation) {
  Compressed c;
  const CompressedModel m = load_compressed(c.dir, 1);
  const std::string out = c.tmp.file("mcu");
  export_model(m, "c-header", nlohmann::json::object(), out);
  for (const char* f : {"model.h", "adze_mcu.h", "adze_mcu.c", "adze_host_main.c"})
    EXPECT_TRUE(std::filesystem::exists(out + "/" + f)) << f;
  const std::string header = read_file_text(out + "/model.h");
  EXPECT_NE(header.find("#define ADZE_FLASH_BYTES"), std::string::npos);
  EXPECT_NE(header.find("#define ADZE_SRAM_BYTES"), std::string::npos);
  // The 4-bit classifier is stored two codes per byte.
  const Encoding& fc = m.encodings.at("classifier");
  const int64_t fc_bytes = (fc.channels() * fc.reduction() + 1) / 2;
  EXPECT_NE(header.find("[" + std::to_string(fc_bytes) + "] = {"), std::string::npos);

  const at::Tensor x = c.data.inputs;
  const at::Tensor simulated = m.model.forward(x);
  const at::Tensor compiled = c_header::compile_and_run(out, x).view_as(simulated);
  const double agreement = compiled.argmax(1).eq(simulated.argmax(1)).to(torch::kDouble).mean().item<double>();
  const double rel = ((compiled - simulated).abs().max() / simulated.abs().max()).item<double>();
  RecordProperty("samples", static_cast<int>(x.size(0)));
  RecordProperty("max_relative_diff", std::to_string(rel));
  EXPECT_GE(agreement, 0.99);
  EXPECT_LT(rel, 1e-4);
}

TEST(CHeaderExporter, RefusesWhatTheInterpreterCannotRun) {
  {
    Compressed c(R"({"defaults": {"weight_bits": 8, "symmetric": false}})");
    const CompressedModel m = load_compressed(c.dir, 1);
    expect_error([&] { export_model(m, "c-header", nlohmann::json::object(), c.tmp.file("a")); },
                 ErrorKind::kUnsupported, {"layer 'classifier': symmetric false"});
    EXPECT_FALSE(std::filesystem::exists(c.tmp.file("a")));
  }
  {
    Compressed c(R"({"defaults": {"weight_bits": 32}})");
    const CompressedModel m = load_compressed(c.dir, 1);
    expect_error([&] { export_model(m, "c-header", nlohmann::json::object(), c.tmp.file("b")); },
                 ErrorKind::kUnsupported, {"weight_bits 32"});
  }
  {
    Compressed c;
    const CompressedModel m = load_compressed(c.dir, 4);
    expect_error([&] { export_model(m, "c-header", nlohmann::json::object(), c.tmp.file("c")); },
                 ErrorKind::kUnsupported, {"--batch 1"});
    EXPECT_FALSE(std::filesystem::exists(c.tmp.file("c")));
  }
}

}  // namespace
}  // namespace adze
