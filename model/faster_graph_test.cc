#include "model/faster_graph.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <limits>
#include <string>

#include "model/frontend.h"
#include "model/model.h"
#include "model/tapped_graph.h"
#include "tests/test_util.h"

namespace adze {
namespace {

using testing::TempDir;

int count_nodes(torch::jit::Graph& graph, const std::string& kind) {
  int n = 0;
  for (const auto* node : graph.nodes())
    if (node->kind().toQualString() == kind) ++n;
  return n;
}

// A convolution and two max pools (one padded, one with ceil_mode), written by TorchScript and loaded as adze
// loads a user's model.
torch::jit::Module pooled_module(int64_t in_channels) {
  torch::manual_seed(0);
  torch::jit::Module m("Pooled");
  m.register_parameter("w", torch::randn({8, in_channels, 3, 3}), false);
  m.register_parameter("w2", torch::randn({6, 8, 1, 1}), false);
  m.define(R"(
def forward(self, x):
    y = torch.relu(torch.conv2d(x, self.w))
    y = torch.max_pool2d(y, [3, 3], [2, 2], [1, 1])
    y = torch.conv2d(y, self.w2)
    return torch.max_pool2d(y, [2, 2], [2, 2], [0, 0], [1, 1], True)
)");
  return m;
}

Model load(torch::jit::Module& m, const TempDir& dir, const Shape& shape) {
  const std::string path = dir.path() + "/pooled.pt";
  m.save(path);
  return load_torchscript(path, {shape, "float32"});
}

// x with NaN, -inf and +inf in places the pools read.
at::Tensor awkward_input(const Shape& shape) {
  torch::manual_seed(1);
  at::Tensor x = torch::randn(shape);
  x[0][0][4][4] = std::numeric_limits<float>::quiet_NaN();
  x[1][1][7][3] = -std::numeric_limits<float>::infinity();
  x[2][0][9][9] = std::numeric_limits<float>::infinity();
  return x;
}

void expect_same_bits(const at::Tensor& got, const at::Tensor& want) {
  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_EQ(got.strides(), want.strides());
  EXPECT_TRUE(torch::equal(got.isnan(), want.isnan()));
  EXPECT_TRUE(torch::equal(got.nan_to_num(0, 0, 0), want.nan_to_num(0, 0, 0)));
}

TEST(FasterGraph, PoolsRunChannelsLastAndGiveTheSameBits) {
  TempDir dir;
  torch::jit::Module m = pooled_module(3);
  const Shape shape = {4, 3, 17, 17};
  Model model = load(m, dir, shape);
  std::shared_ptr<torch::jit::Graph> faster = faster_graph(model.graph());
  ASSERT_TRUE(faster);
  EXPECT_EQ(count_nodes(*faster, "prim::If"), 2);        // per pool: is its input NCHW when it runs?
  EXPECT_EQ(count_nodes(model.graph(), "prim::If"), 0);  // the model's own graph is as traced

  const at::Tensor x = awkward_input(shape);
  const at::Tensor want = m.forward({x}).toTensor();
  ASSERT_TRUE(want.isnan().any().item<bool>());
  {
    torch::NoGradGuard no_grad;  // Model::forward runs the faster copy without autograd...
    expect_same_bits(model.forward(x), want);
  }
  // ...and the graph as traced where autograd records (training), whose backward the copy would slow down.
  const at::Tensor trained = model.forward(x.clone().requires_grad_());
  ASSERT_TRUE(trained.grad_fn());
  EXPECT_NE(trained.grad_fn()->name().find("MaxPool"), std::string::npos) << trained.grad_fn()->name();
  expect_same_bits(trained.detach(), want);

  // The tapped graph (calibration, verify) runs the faster copy too; a tapped pool output is NCHW as traced.
  std::vector<const torch::jit::Value*> taps;
  for (const auto* node : model.graph().nodes())
    if (node->kind() == c10::aten::max_pool2d) taps.push_back(node->output());
  ASSERT_EQ(taps.size(), 2u);
  const TappedGraph tapped(model, taps);
  const TappedGraph::Result r = tapped.run(x);
  expect_same_bits(r.output, want);
  expect_same_bits(r.values[1], want);
  ASSERT_TRUE(r.values[0].is_contiguous());
}

// A weight replaced by one laid out channels last (as a projection's result can be) makes the convolution write
// channels last: the pools then run as traced, and every value after them is laid out as libtorch lays it out.
TEST(FasterGraph, AChannelsLastInputAtRunTimeRunsTheOriginalPool) {
  TempDir dir;
  torch::jit::Module m = pooled_module(3);
  const Shape shape = {4, 3, 17, 17};
  Model model = load(m, dir, shape);
  const at::Tensor cl = m.attr("w").toTensor().contiguous(at::MemoryFormat::ChannelsLast);
  m.setattr("w", cl);
  model.set_tensor(model.find_tensor("w"), cl);
  const at::Tensor x = awkward_input(shape);
  const at::Tensor want = m.forward({x}).toTensor();
  ASSERT_TRUE(want.is_contiguous(at::MemoryFormat::ChannelsLast));
  expect_same_bits(model.forward(x), want);
}

TEST(FasterGraph, LeavesAloneWhatItCannotSpeedUp) {
  TempDir dir;
  // Left as traced: a pool over three channels (too few to gain), no pool, a pool of doubles.
  torch::jit::Module few_channels("FewChannels");
  few_channels.define(R"(
def forward(self, x):
    return torch.max_pool2d(x, [2, 2])
)");
  EXPECT_FALSE(faster_graph(load(few_channels, dir, {2, 3, 8, 8}).graph()));
  EXPECT_TRUE(faster_graph(load(few_channels, dir, {2, 4, 8, 8}).graph()));
  torch::jit::Module no_pool("NoPool");
  no_pool.define(R"(
def forward(self, x):
    return torch.relu(x)
)");
  EXPECT_FALSE(faster_graph(load(no_pool, dir, {2, 3, 8, 8}).graph()));
  torch::jit::Module doubles("Doubles");
  doubles.define(R"(
def forward(self, x):
    return torch.max_pool2d(x.double(), [2, 2])
)");
  EXPECT_FALSE(faster_graph(load(doubles, dir, {2, 3, 8, 8}).graph()));
}

}  // namespace
}  // namespace adze
