// Attention's float core as one op of the packed runtime: softmax(alpha·Q·Kᵀ, masked)·V, which a traced graph
// writes as matmul, div, masked_fill, softmax, matmul (fusion.h folds that chain into its first matmul).
//
// Computed a block of query rows at a time, on the float kernels of kernels/float_kernels.h, so that a row's
// scores are still in cache when its softmax and its share of the product with V read them. Where every row of
// the mask is a prefix of allowed keys followed by masked ones (a causal mask: row i allows keys 0..i), a block
// computes the scores of its allowed keys only and sums only those in the product with V: about half the work
// of the full products at 64 tokens. That path gives the chain's own values wherever the fill is negligible
// (e^(fill − the row's largest score) is 0 in float, as for −1e9 or −∞); a block where it is not takes the full
// products, with the mask applied as masked_fill applies it.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <vector>

#include "core/isa.h"

namespace adze {
namespace packed {

/// A mask's rows as prefixes: L with row i of a [T, S] bool mask false on [0, L_i) and true on [L_i, S), each
/// L_i at least 1. nullopt where the mask has another form (a row with a gap, or wholly masked).
std::optional<std::vector<int64_t>> mask_prefixes(const at::Tensor& mask);

/// What masks the scores: `mask` (bool, its trailing dimensions [T, S], any leading ones of size 1) where it is
/// set gets `fill`; undefined: nothing masked. `prefixes`: mask_prefixes(mask) where the caller knows it (the
/// mask is a constant of the graph); found here otherwise.
struct AttentionMask {
  at::Tensor mask;
  float fill = 0;
  const std::optional<std::vector<int64_t>>* prefixes = nullptr;
};

/// softmax(alpha·(q·kt) with the mask applied, over the last dimension)·v for q [.., T, d], kt [.., d, S] and
/// v [.., S, dv], float32 with 1 or 2 equal batch dimensions and any strides (attention's permuted views need no
/// copy). The result is [.., T, dv]; with two batch dimensions (batch, heads) it is laid out as
/// [batch, T, heads, dv] in memory, so that attention's transpose(1, 2).reshape that follows is a view. Other
/// shapes and types run as the chain of ATen operators. Heads are split over the threads where there is work
/// enough. `isa` chooses the float kernels (active_isa() in production; tests pass each runnable one).
at::Tensor attention(const at::Tensor& q, const at::Tensor& kt, const at::Tensor& v, const AttentionMask& mask,
                     float alpha, Isa isa);

}  // namespace packed
}  // namespace adze
