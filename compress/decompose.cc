#include "compress/decompose.h"

#include <torch/torch.h>

#include <Eigen/Dense>
#include <Eigen/SVD>
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace adze {
namespace {

using MatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr int kSmartDealIterations = 12;

bool is_conv(const Layer& layer) { return layer.kind == LayerKind::kConv1d || layer.kind == LayerKind::kConv2d; }

// C and K of the canonical matrix (to_canonical): C along channel_dim, K everything else (a convolution's
// Cin/groups · kernel size).
int64_t outputs(const Layer& layer) { return layer.weight_shape.at(static_cast<std::size_t>(channel_dim(layer))); }
int64_t reduction_of(const Layer& layer) {
  return shape_numel(layer.weight_shape) / std::max<int64_t>(1, outputs(layer));
}

bool pointwise(const Layer& layer) {
  for (std::size_t d = 2; d < layer.weight_shape.size(); ++d)
    if (layer.weight_shape[d] != 1) return false;
  return true;
}

Layer matrix_layer(const Layer& parent, const std::string& role, int64_t rows, int64_t cols) {
  Layer f;
  f.name = parent.name + "/" + role;
  f.weight = f.name;
  f.kind = LayerKind::kLinear;
  f.weight_shape = {rows, cols};
  f.params = rows * cols;
  f.in_channels = cols;
  f.out_channels = rows;
  f.reduction_dim = 1;
  f.reduction_size = cols;
  return f;
}

// The factor's config: the layer's weight scheme, without the decomposition or activation fields.
LayerConfig factor_config(const LayerConfig& c) {
  LayerConfig f = c;
  f.decompose = Decomposition::kNone;
  f.act_bits = 0;
  return f;
}

MatrixD to_eigen(const at::Tensor& t) {
  const at::Tensor d = t.to(torch::kDouble).contiguous();
  return Eigen::Map<const MatrixD>(d.data_ptr<double>(), d.size(0), d.size(1));
}

at::Tensor to_tensor(const MatrixD& m) {
  at::Tensor t = torch::empty({m.rows(), m.cols()}, torch::kDouble);
  Eigen::Map<MatrixD>(t.data_ptr<double>(), m.rows(), m.cols()) = m;
  return t.to(torch::kFloat);
}

// The canonical [rows, cols] matrix of a tensor in factor f's own layout (for the factor's layer).
at::Tensor factor_canonical(const Encoding& f, const at::Tensor& t) {
  return t.permute(f.order).reshape({f.channels(), f.reduction()});
}
at::Tensor factor_canonical(const Encoding& f) { return factor_canonical(f, f.decode()); }

// A canonical [rows, cols] matrix back in the layout of `layer`'s weight.
at::Tensor own_layout(const at::Tensor& canonical, const Layer& layer) {
  Encoding shape_only;
  shape_only.shape = layer.weight_shape;
  to_canonical(torch::empty(layer.weight_shape, torch::kFloat), layer.reduction_dim, &shape_only.order);
  return shape_only.from_canonical(canonical);
}

// The matrix SmartDeal cuts into chunks: a convolution's weight in its own layout (chunks run along the kernel
// rows, as in SmartDeal), any other layer's canonical matrix.
at::Tensor smartdeal_matrix(const at::Tensor& weight, const Layer& layer, std::vector<int64_t>* order) {
  if (is_conv(layer)) {
    order->resize(static_cast<std::size_t>(weight.dim()));
    for (int64_t d = 0; d < weight.dim(); ++d) (*order)[static_cast<std::size_t>(d)] = d;
    return weight.to(torch::kFloat).contiguous().reshape({weight.size(0), -1});
  }
  return to_canonical(weight.to(torch::kFloat), layer.reduction_dim, order);
}

Encoding project_lowrank(const at::Tensor& canonical, const Layer& layer, const LayerConfig& c,
                         const std::vector<FactorSpec>& specs) {
  const int64_t r = lowrank_rank(layer, c);
  const MatrixD w = to_eigen(canonical);
  Eigen::BDCSVD<MatrixD> svd(w, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Eigen::VectorXd root = svd.singularValues().head(r).cwiseSqrt();
  const MatrixD first = root.asDiagonal() * svd.matrixV().leftCols(r).transpose();  // [r, K]
  const MatrixD second = svd.matrixU().leftCols(r) * root.asDiagonal();             // [C, r]
  Encoding e;
  e.factors.push_back(project(own_layout(to_tensor(first), specs[0].layer), specs[0].layer, specs[0].config));
  e.factors.push_back(project(own_layout(to_tensor(second), specs[1].layer), specs[1].layer, specs[1].config));
  return e;
}

Encoding project_monarch(const at::Tensor& canonical, const LayerConfig& c, const std::vector<FactorSpec>& specs) {
  const int64_t b = c.blocks, rows = canonical.size(0) / b, cols = canonical.size(1) / b;
  const MatrixD w = to_eigen(canonical);
  MatrixD blocks_in(b * b, cols), blocks_out(canonical.size(0), b);
  for (int64_t l = 0; l < b; ++l) {
    for (int64_t k = 0; k < b; ++k) {
      const MatrixD block = w.block(l * rows, k * cols, rows, cols);
      Eigen::JacobiSVD<MatrixD> svd(block, Eigen::ComputeThinU | Eigen::ComputeThinV);
      const double root = std::sqrt(svd.singularValues()(0));
      blocks_in.row(k * b + l) = root * svd.matrixV().col(0).transpose();
      blocks_out.block(l * rows, k, rows, 1) = root * svd.matrixU().col(0);
    }
  }
  Encoding e;
  e.factors.push_back(project(to_tensor(blocks_in), specs[0].layer, specs[0].config));
  e.factors.push_back(project(to_tensor(blocks_out), specs[1].layer, specs[1].config));
  return e;
}

// SmartDeal's bases are kept as rows [C, b·b], one b×b basis a channel, as the basis factor stores them.
Eigen::Map<MatrixD> basis_of(MatrixD& bases, int64_t ch, int64_t b) { return {bases.row(ch).data(), b, b}; }
Eigen::Map<const MatrixD> basis_of(const MatrixD& bases, int64_t ch, int64_t b) { return {bases.row(ch).data(), b, b}; }
// Channel ch's weights (or coefficients) as chunks [n, b].
Eigen::Map<const MatrixD> chunks_of(const MatrixD& m, int64_t ch, int64_t b) {
  return {m.row(ch).data(), m.cols() / b, b};
}

// Per channel: coefficients [n, b] = W_c [n, b] · B_c⁺.
at::Tensor smartdeal_coefficients(const MatrixD& w, const MatrixD& bases, int64_t b) {
  MatrixD coefficients(w.rows(), w.cols());
  for (int64_t ch = 0; ch < w.rows(); ++ch)
    Eigen::Map<MatrixD>(coefficients.row(ch).data(), w.cols() / b, b) =
        chunks_of(w, ch, b) * basis_of(bases, ch, b).completeOrthogonalDecomposition().pseudoInverse();
  return to_tensor(coefficients);
}

// Per channel: B_c = argmin ‖W_c − Ĉ_c·B‖ (least squares); a channel whose coefficients are all zero keeps its
// basis.
void smartdeal_fit_bases(const MatrixD& w, const MatrixD& coefficients, int64_t b, MatrixD* bases) {
  for (int64_t ch = 0; ch < w.rows(); ++ch) {
    const auto cc = chunks_of(coefficients, ch, b);
    if (cc.squaredNorm() > 0) basis_of(*bases, ch, b) = cc.completeOrthogonalDecomposition().solve(chunks_of(w, ch, b));
  }
}

// Σ_c ‖W_c − C_c·B_c‖².
double smartdeal_error(const MatrixD& w, const MatrixD& coefficients, const MatrixD& bases, int64_t b) {
  double error = 0;
  for (int64_t ch = 0; ch < w.rows(); ++ch)
    error += (chunks_of(w, ch, b) - chunks_of(coefficients, ch, b) * basis_of(bases, ch, b)).squaredNorm();
  return error;
}

Encoding project_smartdeal(const at::Tensor& matrix, const LayerConfig& c, const std::vector<FactorSpec>& specs) {
  const int64_t b = c.basis;
  const MatrixD w = to_eigen(matrix);
  const FactorSpec &coef_spec = specs[0], &basis_spec = specs[1];
  MatrixD bases(w.rows(), b * b);
  for (int64_t ch = 0; ch < w.rows(); ++ch) basis_of(bases, ch, b).setIdentity();
  Encoding best_coefficients;
  MatrixD best_bases = bases;
  double best = std::numeric_limits<double>::infinity();
  for (int it = 0; it < kSmartDealIterations; ++it) {
    Encoding coefficients = project(smartdeal_coefficients(w, bases, b), coef_spec.layer, coef_spec.config);
    const MatrixD decoded = to_eigen(coefficients.decode());
    smartdeal_fit_bases(w, decoded, b, &bases);
    if (const double error = smartdeal_error(w, decoded, bases, b); error < best) {
      best = error;
      best_coefficients = std::move(coefficients);
      best_bases = bases;
    }
  }
  // Quantize the bases, then refit the coefficients to them; keep whichever coefficients fit better.
  Encoding basis_encoding = project(to_tensor(best_bases), basis_spec.layer, basis_spec.config);
  const MatrixD quantized = to_eigen(basis_encoding.decode());
  Encoding refit = project(smartdeal_coefficients(w, quantized, b), coef_spec.layer, coef_spec.config);
  const bool refit_better = smartdeal_error(w, to_eigen(refit.decode()), quantized, b) <
                            smartdeal_error(w, to_eigen(best_coefficients.decode()), quantized, b);
  Encoding e;
  e.factors.push_back(refit_better ? std::move(refit) : std::move(best_coefficients));
  e.factors.push_back(std::move(basis_encoding));
  return e;
}

std::string check_lowrank(const Layer& layer, const LayerConfig& c) {
  if (is_conv(layer) && layer.groups > 1)
    return "decompose lowrank: a grouped convolution (groups " + std::to_string(layer.groups) + ") is not decomposed";
  const int64_t full = std::min(outputs(layer), reduction_of(layer));
  if (c.rank < 0) return "rank " + std::to_string(c.rank) + ": expected at least 1";
  if (c.rank > 0)
    return c.rank <= full
               ? ""
               : "rank " + std::to_string(c.rank) + ": expected 1.." + std::to_string(full) + " (min(C_out " +
                     std::to_string(outputs(layer)) + ", K " + std::to_string(reduction_of(layer)) + "))";
  if (c.rank_ratio == 0) return "decompose lowrank: needs rank or rank_ratio";
  if (!(c.rank_ratio > 0 && c.rank_ratio <= 1))
    return "rank_ratio " + std::to_string(c.rank_ratio) + ": expected (0, 1]";
  return "";
}

std::string check_monarch(const Layer& layer, const LayerConfig& c) {
  if (!(layer.kind == LayerKind::kLinear || layer.kind == LayerKind::kMatmul ||
        (is_conv(layer) && layer.groups == 1 && pointwise(layer))))
    return std::string("decompose monarch: for linear layers and 1x1 convolutions, not a ") + to_string(layer.kind) +
           (is_conv(layer) ? " with a " + shape_to_string(layer.weight_shape) + " weight" : "");
  if (c.blocks < 1) return "blocks " + std::to_string(c.blocks) + ": expected at least 1";
  if (outputs(layer) % c.blocks != 0)
    return "blocks " + std::to_string(c.blocks) + ": does not divide the layer's " + std::to_string(outputs(layer)) +
           " outputs";
  if (reduction_of(layer) % c.blocks != 0)
    return "blocks " + std::to_string(c.blocks) + ": does not divide the layer's " +
           std::to_string(reduction_of(layer)) + " inputs";
  return "";
}

std::string check_smartdeal(const Layer& layer, const LayerConfig& c) {
  if (!c.quantized())
    return "decompose smartdeal: needs weight_bits 2..8 (its coefficients are powers of two of that width), not " +
           std::to_string(c.weight_bits);
  if (c.nm.enabled())
    return "nm " + c.nm.to_string() + ": not with smartdeal (its coefficients' sparsity is the field sparsity)";
  if (c.permute) return "permute: not with smartdeal";
  if (c.basis < 1) return "basis " + std::to_string(c.basis) + ": expected at least 1";
  if (reduction_of(layer) % c.basis != 0)
    return "basis " + std::to_string(c.basis) + ": does not divide the " + std::to_string(reduction_of(layer)) +
           " weights of each output channel";
  return "";
}

}  // namespace

const char* to_string(Decomposition d) {
  switch (d) {
    case Decomposition::kNone:
      return "none";
    case Decomposition::kLowRank:
      return "lowrank";
    case Decomposition::kMonarch:
      return "monarch";
    case Decomposition::kSmartDeal:
      return "smartdeal";
  }
  return "none";
}

bool parse_decomposition(const std::string& name, Decomposition* out) {
  for (Decomposition d :
       {Decomposition::kNone, Decomposition::kLowRank, Decomposition::kMonarch, Decomposition::kSmartDeal})
    if (name == to_string(d)) {
      *out = d;
      return true;
    }
  return false;
}

std::string decomposition_names() { return "none, lowrank, monarch or smartdeal"; }

std::string describe_decomposition(const Layer& layer, const LayerConfig& c) {
  switch (c.decompose) {
    case Decomposition::kLowRank:
      return "lowrank r=" + std::to_string(lowrank_rank(layer, c));
    case Decomposition::kMonarch:
      return "monarch " + std::to_string(c.blocks) + " blocks";
    case Decomposition::kSmartDeal:
      return "smartdeal basis " + std::to_string(c.basis);
    case Decomposition::kNone:
      break;
  }
  return "none";
}

int64_t lowrank_rank(const Layer& layer, const LayerConfig& c) {
  if (c.rank > 0) return c.rank;
  const int64_t full = std::min(outputs(layer), reduction_of(layer));
  return std::max<int64_t>(1, std::llround(c.rank_ratio * static_cast<double>(full)));
}

std::vector<FactorSpec> factor_specs(const Layer& layer, const LayerConfig& c) {
  const int64_t C = outputs(layer), K = reduction_of(layer);
  const LayerConfig f = factor_config(c);
  switch (c.decompose) {
    case Decomposition::kNone:
      return {};
    case Decomposition::kLowRank: {
      const int64_t r = lowrank_rank(layer, c);
      Layer first = matrix_layer(layer, "first", r, K), second = matrix_layer(layer, "second", C, r);
      if (is_conv(layer)) {  // a kh×kw convolution to r channels (its N:M runs along Cin), then a 1×1 one
        first.kind = second.kind = layer.kind;
        first.weight_shape = layer.weight_shape;
        first.weight_shape[0] = r;
        first.in_channels = first.reduction_size = layer.weight_shape.at(1);
        second.weight_shape = Shape(layer.weight_shape.size(), 1);
        second.weight_shape[0] = C;
        second.weight_shape[1] = r;
      }
      return {{"first", first, f}, {"second", second, f}};
    }
    case Decomposition::kMonarch:
      return {{"blocks_in", matrix_layer(layer, "blocks_in", c.blocks * c.blocks, K / c.blocks), f},
              {"blocks_out", matrix_layer(layer, "blocks_out", C, c.blocks), f}};
    case Decomposition::kSmartDeal: {
      LayerConfig coefficients = f;
      coefficients.quantizer = Quantizer::kPow2;
      coefficients.granularity = Granularity::kPerChannel;
      coefficients.nm = NMPattern{};
      LayerConfig basis = f;
      basis.sparsity = 0;
      basis.nm = NMPattern{};
      if (basis.granularity == Granularity::kPerGroup) basis.granularity = Granularity::kPerChannel;
      return {{"coefficients", matrix_layer(layer, "coefficients", C, K), coefficients},
              {"basis", matrix_layer(layer, "basis", C, c.basis * c.basis), basis}};
    }
  }
  return {};
}

std::string check_decomposition(const Layer& layer, const LayerConfig& c) {
  if (c.decompose == Decomposition::kNone) return "";
  if (layer.kind == LayerKind::kEmbedding)
    return std::string("decompose ") + to_string(c.decompose) + ": embeddings are not decomposed";
  std::string why;
  switch (c.decompose) {
    case Decomposition::kLowRank:
      why = check_lowrank(layer, c);
      break;
    case Decomposition::kMonarch:
      why = check_monarch(layer, c);
      break;
    case Decomposition::kSmartDeal:
      why = check_smartdeal(layer, c);
      break;
    case Decomposition::kNone:
      break;
  }
  if (!why.empty()) return why;
  for (const FactorSpec& spec : factor_specs(layer, c))
    if (auto factor_why = check_config(spec.layer, spec.config); !factor_why.empty())
      return factor_why + " (in " + to_string(c.decompose) + "'s " + spec.role + " factor " +
             shape_to_string(spec.layer.weight_shape) + ")";
  return "";
}

double factored_macs(const Layer& layer, const LayerConfig& c) {
  const auto C = static_cast<double>(outputs(layer)), K = static_cast<double>(reduction_of(layer));
  const auto macs = static_cast<double>(layer.macs);
  switch (c.decompose) {
    case Decomposition::kLowRank: {
      const auto r = static_cast<double>(lowrank_rank(layer, c));
      return macs * (r * K + C * r) / (C * K);
    }
    case Decomposition::kMonarch: {
      const auto b = static_cast<double>(c.blocks);
      return macs * (b * K + C * b) / (C * K);
    }
    case Decomposition::kSmartDeal:
    case Decomposition::kNone:
      break;
  }
  return macs;
}

Encoding project_decomposed(const at::Tensor& weight, const Layer& layer, const LayerConfig& c) {
  const std::vector<FactorSpec> specs = factor_specs(layer, c);
  std::vector<int64_t> order;
  const at::Tensor matrix = c.decompose == Decomposition::kSmartDeal
                                ? smartdeal_matrix(weight, layer, &order)
                                : to_canonical(weight.to(torch::kFloat), layer.reduction_dim, &order);
  Encoding e;
  switch (c.decompose) {
    case Decomposition::kLowRank:
      e = project_lowrank(matrix, layer, c, specs);
      break;
    case Decomposition::kMonarch:
      e = project_monarch(matrix, c, specs);
      break;
    case Decomposition::kSmartDeal:
      e = project_smartdeal(matrix, c, specs);
      break;
    case Decomposition::kNone:
      throw Error(ErrorKind::kInternal, "project_decomposed: layer '" + layer.name + "' is not decomposed");
  }
  e.shape = Shape(weight.sizes().begin(), weight.sizes().end());
  e.order = order;
  e.config = c;
  return e;
}

namespace {

// The product of canonical factor matrices [rows, cols] under e's decomposition: the canonical [C, K] weight.
at::Tensor compose_canonical(const Encoding& e, const at::Tensor& first, const at::Tensor& second) {
  const int64_t C = e.channels(), K = e.reduction();
  switch (e.config.decompose) {
    case Decomposition::kLowRank:
      return torch::matmul(second, first);
    case Decomposition::kMonarch: {
      const int64_t b = e.config.blocks;
      // W[l, s, k, j] = blocks_out[l, s, k] · blocks_in[k, l, j]: one product per entry, no sum.
      at::Tensor out = second.reshape({b, C / b, b, 1});
      at::Tensor in = first.reshape({b, b, K / b}).permute({1, 0, 2}).reshape({b, 1, b, K / b});
      return (out * in).reshape({C, K});
    }
    case Decomposition::kSmartDeal: {
      const int64_t b = e.config.basis;
      return torch::bmm(first.reshape({C, K / b, b}), second.reshape({C, b, b})).reshape({C, K});
    }
    case Decomposition::kNone:
      break;
  }
  throw Error(ErrorKind::kInternal, "compose: not a decomposed encoding");
}

void require_two_factors(const Encoding& e) {
  if (e.factors.size() != 2)
    throw Error(ErrorKind::kInternal, "a decomposed encoding has " + std::to_string(e.factors.size()) + " factors");
}

}  // namespace

at::Tensor compose_factors(const Encoding& e) {
  require_two_factors(e);
  return compose_canonical(e, factor_canonical(e.factors[0]), factor_canonical(e.factors[1]));
}

at::Tensor compose_weight(const Encoding& e, const at::Tensor& first, const at::Tensor& second) {
  require_two_factors(e);
  return e.from_canonical(
      compose_canonical(e, factor_canonical(e.factors[0], first), factor_canonical(e.factors[1], second)));
}

}  // namespace adze
