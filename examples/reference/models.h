// The reference models, as plain libtorch C++ modules (what a team training in C++ would write).
//
//   fmnist-cnn   two conv+BatchNorm+ReLU+maxpool stages and a two-layer classifier, Fashion-MNIST
//   fmnist-vit   a tiny vision transformer: 7x7 patches, 4 pre-norm blocks of width 64, class token
//   fortune-gpt  a character-level decoder-only transformer over bytes, 4 blocks of width 128, context 64,
//                the output head tied to the token embedding
#pragma once

#include <torch/torch.h>

namespace adze::reference {

struct FmnistCnnImpl : torch::nn::Module {
  FmnistCnnImpl();
  torch::Tensor forward(torch::Tensor x);
  torch::nn::Sequential features{nullptr}, classifier{nullptr};
};
TORCH_MODULE(FmnistCnn);

/// Pre-norm transformer block; `causal` masks attention to earlier positions (sequence length <= max_len).
struct TransformerBlockImpl : torch::nn::Module {
  TransformerBlockImpl(int64_t dim, int64_t heads, int64_t mlp_dim, bool causal, int64_t max_len);
  torch::Tensor forward(torch::Tensor x);
  int64_t heads;
  bool causal;
  torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  torch::nn::Linear qkv{nullptr}, proj{nullptr}, fc1{nullptr}, fc2{nullptr};
  torch::Tensor mask;  // [max_len, max_len], true above the diagonal
};
TORCH_MODULE(TransformerBlock);

struct FmnistVitImpl : torch::nn::Module {
  FmnistVitImpl();
  torch::Tensor forward(torch::Tensor x);
  torch::nn::Conv2d patch{nullptr};
  torch::Tensor cls_token, pos_embedding;
  torch::nn::Sequential blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(FmnistVit);

struct FortuneGptImpl : torch::nn::Module {
  static constexpr int64_t kContext = 64;
  static constexpr int64_t kVocab = 256;
  FortuneGptImpl();
  /// tokens [B, T<=kContext] int64 -> logits [B, T, 256]
  torch::Tensor forward(torch::Tensor tokens);
  torch::nn::Embedding tokens{nullptr};
  torch::Tensor pos_embedding;
  torch::nn::Sequential blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(FortuneGpt);

}  // namespace adze::reference
