#include "examples/reference/models.h"

#include <cmath>

namespace adze::reference {
namespace nn = torch::nn;

FmnistCnnImpl::FmnistCnnImpl() {
  features = register_module("features", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1).bias(false)),
                                                        nn::BatchNorm2d(32), nn::ReLU(), nn::MaxPool2d(2),
                                                        nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1).bias(false)),
                                                        nn::BatchNorm2d(64), nn::ReLU(), nn::MaxPool2d(2)));
  classifier = register_module(
      "classifier", nn::Sequential(nn::Linear(64 * 7 * 7, 128), nn::ReLU(), nn::Dropout(0.25), nn::Linear(128, 10)));
}

torch::Tensor FmnistCnnImpl::forward(torch::Tensor x) { return classifier->forward(features->forward(x).flatten(1)); }

TransformerBlockImpl::TransformerBlockImpl(int64_t dim, int64_t heads_, int64_t mlp_dim, bool causal_, int64_t max_len)
    : heads(heads_), causal(causal_) {
  ln1 = register_module("ln1", nn::LayerNorm(nn::LayerNormOptions({dim})));
  qkv = register_module("qkv", nn::Linear(dim, 3 * dim));
  proj = register_module("proj", nn::Linear(dim, dim));
  ln2 = register_module("ln2", nn::LayerNorm(nn::LayerNormOptions({dim})));
  fc1 = register_module("fc1", nn::Linear(dim, mlp_dim));
  fc2 = register_module("fc2", nn::Linear(mlp_dim, dim));
  if (causal) mask = register_buffer("mask", torch::ones({max_len, max_len}, torch::kBool).triu(1));
}

// Shapes are written with -1 for the batch: a traced graph then runs at any batch size (sizes read in C++ are
// recorded as constants).
torch::Tensor TransformerBlockImpl::forward(torch::Tensor x) {
  const int64_t len = x.size(1), dim = x.size(2), head_dim = dim / heads;
  auto qkv_out = qkv->forward(ln1->forward(x)).view({-1, len, 3, heads, head_dim}).permute({2, 0, 3, 1, 4});
  auto q = qkv_out[0], k = qkv_out[1], v = qkv_out[2];
  auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(head_dim));
  if (causal) scores = scores.masked_fill(mask.slice(0, 0, len).slice(1, 0, len), -1e9);
  auto attended = torch::matmul(torch::softmax(scores, -1), v).transpose(1, 2).reshape({-1, len, dim});
  x = x + proj->forward(attended);
  return x + fc2->forward(torch::gelu(fc1->forward(ln2->forward(x))));
}

FmnistVitImpl::FmnistVitImpl() {
  const int64_t dim = 64;
  patch = register_module("patch", nn::Conv2d(nn::Conv2dOptions(1, dim, 7).stride(7)));
  cls_token = register_parameter("cls_token", torch::randn({1, 1, dim}) * 0.02);
  pos_embedding = register_parameter("pos_embedding", torch::randn({1, 17, dim}) * 0.02);
  blocks = register_module("blocks", nn::Sequential());
  for (int i = 0; i < 4; ++i) blocks->push_back(TransformerBlock(dim, 4, 128, false, 17));
  norm = register_module("norm", nn::LayerNorm(nn::LayerNormOptions({dim})));
  head = register_module("head", nn::Linear(dim, 10));
}

torch::Tensor FmnistVitImpl::forward(torch::Tensor x) {
  auto tokens = patch->forward(x).flatten(2).transpose(1, 2);  // [B, 16, 64]
  // The class token broadcast against a zero slice of the tokens, so that no batch size is baked in.
  auto cls = torch::zeros_like(tokens.slice(1, 0, 1)) + cls_token;
  tokens = torch::cat({cls, tokens}, 1) + pos_embedding;
  return head->forward(norm->forward(blocks->forward(tokens)).select(1, 0));
}

FortuneGptImpl::FortuneGptImpl() {
  const int64_t dim = 128;
  tokens = register_module("tokens", nn::Embedding(kVocab, dim));
  tokens->weight.data().normal_(0, 0.02);
  pos_embedding = register_parameter("pos_embedding", torch::randn({1, kContext, dim}) * 0.02);
  blocks = register_module("blocks", nn::Sequential());
  for (int i = 0; i < 4; ++i) blocks->push_back(TransformerBlock(dim, 4, 4 * dim, true, kContext));
  norm = register_module("norm", nn::LayerNorm(nn::LayerNormOptions({dim})));
}

torch::Tensor FortuneGptImpl::forward(torch::Tensor ids) {
  const int64_t len = ids.size(1);
  auto x = tokens->forward(ids) + pos_embedding.slice(1, 0, len);
  x = norm->forward(blocks->forward(x));
  return torch::matmul(x, tokens->weight.t());  // head tied to the embedding
}

}  // namespace adze::reference
