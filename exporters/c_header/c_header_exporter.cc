// c-header: a self-contained C99 export for microcontroller-class targets. Writes a directory:
//
//   model.h           the weights (int8 codes, or two int4 codes per byte), scales, biases and one descriptor per
//                     layer, with the buffer sizes and the flash / SRAM bytes they need
//   adze_mcu.h/.c     the reference integer interpreter (this folder)
//   adze_host_main.c  a host harness: samples on stdin, outputs on stdout
//
// The model must be a chain of the ops the interpreter has (fmnist-cnn's): convolution, linear / mm / addmm,
// bias add, relu, max pooling, global average pooling, flatten and dropout (no-ops), and activation fake-quant
// feeding a convolution or linear layer (which then runs on uint8 inputs and int32 accumulators). Batch 1.
#include <torch/csrc/jit/ir/ir.h>
#include <torch/torch.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/files.h"
#include "exporters/c_header/c_program.h"
#include "exporters/c_header/mcu_sources.h"
#include "exporters/graph_values.h"
#include "exporters/register.h"
#include "exporters/runner.h"

namespace adze {
namespace {

using torch::jit::Node;
using torch::jit::Value;

std::vector<int64_t> sizes_of(const Value* v) {
  auto s = traced_sizes(v);
  if (s.empty()) throw Error(ErrorKind::kUnsupported, "c-header: value %" + v->debugName() + " has no known shape");
  return s;
}

// [C, H, W] of an activation (batch dropped; a flat vector is [C, 1, 1]).
std::array<int64_t, 3> chw(const Value* v) {
  const auto s = sizes_of(v);
  if (s.size() == 4) return {s[1], s[2], s[3]};
  int64_t n = 1;
  for (std::size_t i = 1; i < s.size(); ++i) n *= s[i];
  return {n, 1, 1};
}

struct CLayer {
  std::string op;
  std::array<int64_t, 3> in{}, out{};
  std::vector<int64_t> kernel{1, 1}, stride{1, 1}, pad{0, 0}, dilation{1, 1};
  int64_t groups = 1;
  const Encoding* weight = nullptr;
  at::Tensor bias;
  float act_scale = 0;
  int act_zero_point = 0;
  bool quantized_input = false;
};

std::string hex_float(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%af", static_cast<double>(v));
  return buf;
}

class Lowering {
 public:
  explicit Lowering(const CompressedModel& m) : m_(m) {
    for (const auto& l : m.table.layers) weight_layer_[l.weight] = l.name;
  }

  std::vector<CLayer> run() {
    const auto& graph = m_.model.graph();
    current_ = graph.inputs()[0];
    if (sizes_of(current_).at(0) != 1) throw Error(ErrorKind::kUnsupported, "c-header: export with --batch 1");
    for (const Node* n : graph.nodes()) lower(n);
    const Value* out = graph.outputs()[0];
    if (out->node()->kind() == c10::prim::TupleConstruct) out = out->node()->input(0);
    if (out != current_) throw Error(ErrorKind::kUnsupported, "c-header: the output is not the end of the chain");
    return std::move(layers_);
  }

 private:
  c10::IValue constant(const Value* v) const { return constant_of(v, "c-header"); }
  const Encoding* encoding_of(const Value* v) const {
    if (v->node()->kind() == c10::aten::t) v = v->node()->input(0);
    const NamedTensor* t = m_.model.tensor_of(v);
    const auto l = t ? weight_layer_.find(t->name) : weight_layer_.end();
    if (l == weight_layer_.end()) return nullptr;
    const auto e = m_.encodings.find(l->second);
    return e == m_.encodings.end() ? nullptr : &e->second;
  }
  at::Tensor param(const Value* v) const {
    if (v->type()->kind() == c10::TypeKind::NoneType) return {};
    const NamedTensor* t = m_.model.tensor_of(v);
    if (!t) throw Error(ErrorKind::kUnsupported, "c-header: a bias that is not a parameter");
    return t->value.to(torch::kFloat).contiguous();
  }
  // The op reads the chain's current activation and produces the next one.
  void chain(const Node* n, const Value* input, CLayer layer) {
    const Value* in = input;
    if (in != current_)
      throw Error(ErrorKind::kUnsupported, std::string("c-header: ") + n->kind().toQualString() +
                                               " does not read the previous op's output (only chains of ops)");
    if (auto q = pending_quant_.find(input); q != pending_quant_.end()) {
      if (layer.op == "ADZE_CONV2D" || layer.op == "ADZE_LINEAR") {
        layer.quantized_input = true;  // the layer quantizes its input itself
        layer.act_scale = q->second.first;
        layer.act_zero_point = q->second.second;
      } else {  // a pool's quantized input (integer placement): quantized and back, in place
        CLayer fake_quant;
        fake_quant.op = "ADZE_FAKE_QUANT";
        fake_quant.act_scale = q->second.first;
        fake_quant.act_zero_point = q->second.second;
        fake_quant.in = fake_quant.out = chw(in);
        layers_.push_back(std::move(fake_quant));
      }
    }
    layer.in = chw(in);
    layer.out = chw(n->output());
    layers_.push_back(std::move(layer));
    current_ = n->output();
  }
  // An op that leaves the activation's memory as it is.
  void pass_through(const Node* n) {
    if (n->input(0) != current_)
      throw Error(ErrorKind::kUnsupported, std::string("c-header: ") + n->kind().toQualString() +
                                               " does not read the previous op's output (only chains of ops)");
    current_ = n->output();
  }
  void weighted(const Node* n, const Value* x, const Value* w, const Value* bias, CLayer layer) {
    layer.weight = encoding_of(w);
    if (!layer.weight)
      throw Error(ErrorKind::kUnsupported,
                  std::string("c-header: ") + n->kind().toQualString() + " of a weight adze did not encode");
    if (bias) layer.bias = param(bias);
    chain(n, x, std::move(layer));
  }

  void lower(const Node* n) {
    const std::string k = n->kind().toQualString();
    if (k == "prim::Constant" || k == "prim::ListConstruct" || k == "prim::TupleConstruct" || k == "aten::t") return;
    if (k == "aten::flatten" || k == "aten::dropout" || k == "aten::contiguous" || k == "aten::view" ||
        k == "aten::reshape")
      return pass_through(n);  // NCHW memory is already flat
    if (k == "aten::fake_quantize_per_tensor_affine") {
      const NamedTensor* s = m_.model.tensor_of(n->input(1));
      const NamedTensor* z = m_.model.tensor_of(n->input(2));
      if (!s || !z || constant(n->input(3)).toInt() != 0 || constant(n->input(4)).toInt() != 255)
        throw Error(ErrorKind::kUnsupported, "c-header: activation fake-quant other than 8-bit asymmetric");
      pending_quant_[n->output()] = {s->value.item<float>(), static_cast<int>(z->value.item<double>())};
      return pass_through(n);
    }
    CLayer l;
    if (k == "aten::_convolution") {
      if (constant(n->input(6)).toBool() || sizes_of(n->input(1)).size() != 4)
        throw Error(ErrorKind::kUnsupported, "c-header: only 2-D, non-transposed convolutions");
      l.op = "ADZE_CONV2D";
      const auto shape = sizes_of(n->input(1));
      l.kernel = {shape[2], shape[3]};
      l.stride = constant(n->input(3)).toIntVector();
      l.pad = constant(n->input(4)).toIntVector();
      l.dilation = constant(n->input(5)).toIntVector();
      l.groups = constant(n->input(8)).toInt();
      return weighted(n, n->input(0), n->input(1), n->input(2), std::move(l));
    }
    l.op = "ADZE_LINEAR";
    if (k == "aten::linear") return weighted(n, n->input(0), n->input(1), n->input(2), std::move(l));
    if ((k == "aten::mm" || k == "aten::matmul") && n->input(1)->node()->kind() == c10::aten::t)
      return weighted(n, n->input(0), n->input(1), nullptr, std::move(l));
    if (k == "aten::addmm" && n->input(2)->node()->kind() == c10::aten::t &&
        constant(n->input(3)).toScalar().toDouble() == 1.0 && constant(n->input(4)).toScalar().toDouble() == 1.0)
      return weighted(n, n->input(1), n->input(2), n->input(0), std::move(l));
    if (k == "aten::add" && constant(n->input(2)).toScalar().toDouble() == 1.0) {  // x + b or b + x (addmm traced)
      const int b = m_.model.tensor_of(n->input(1)) ? 1 : m_.model.tensor_of(n->input(0)) ? 0 : -1;
      if (b >= 0) {
        l.op = "ADZE_BIAS";
        l.bias = param(n->input(static_cast<std::size_t>(b)));
        return chain(n, n->input(static_cast<std::size_t>(1 - b)), std::move(l));
      }
    }
    if (k == "aten::relu" || k == "aten::relu_") {
      l.op = "ADZE_RELU";
      return chain(n, n->input(0), std::move(l));
    }
    if (k == "aten::max_pool2d") {
      if (constant(n->input(5)).toBool()) throw Error(ErrorKind::kUnsupported, "c-header: max_pool2d with ceil_mode");
      l.op = "ADZE_MAXPOOL2D";
      l.kernel = constant(n->input(1)).toIntVector();
      l.stride = constant(n->input(2)).toIntVector();
      if (l.stride.empty()) l.stride = l.kernel;
      l.pad = constant(n->input(3)).toIntVector();
      l.dilation = constant(n->input(4)).toIntVector();
      return chain(n, n->input(0), std::move(l));
    }
    if (k == "aten::adaptive_avg_pool2d" && constant(n->input(1)).toIntVector() == std::vector<int64_t>{1, 1}) {
      l.op = "ADZE_GLOBAL_AVGPOOL";
      return chain(n, n->input(0), std::move(l));
    }
    throw Error(ErrorKind::kUnsupported, "c-header: no interpreter op for " + k);
  }

  const CompressedModel& m_;
  std::map<std::string, std::string> weight_layer_;
  std::map<const Value*, std::pair<float, int>> pending_quant_;
  const Value* current_ = nullptr;
  std::vector<CLayer> layers_;
};

// The codes in the weight's own layout, as C bytes: int8, or two 4-bit codes per byte (low nibble first).
std::vector<int8_t> weight_bytes(const Encoding& e) {
  const at::Tensor codes =
      e.from_canonical(e.codes.reshape({e.channels(), e.reduction()})).to(torch::kInt).contiguous();
  const int32_t* c = codes.data_ptr<int32_t>();
  const int64_t n = codes.numel();
  std::vector<int8_t> out;
  if (e.config.weight_bits > 4) {
    out.assign(c, c + n);
    return out;
  }
  out.assign(static_cast<std::size_t>((n + 1) / 2), 0);
  for (int64_t i = 0; i < n; ++i) {
    const auto nibble = static_cast<uint8_t>(c[i] & 15);
    auto& byte = reinterpret_cast<uint8_t&>(out[static_cast<std::size_t>(i / 2)]);
    byte = static_cast<uint8_t>(byte | (i % 2 ? nibble << 4 : nibble));
  }
  return out;
}

template <typename T, typename F>
void array(std::ostream& o, const char* type, const std::string& name, const std::vector<T>& values, F format) {
  o << "static const " << type << " " << name << "[" << values.size() << "] = {";
  for (std::size_t i = 0; i < values.size(); ++i) o << (i % 12 == 0 ? "\n  " : " ") << format(values[i]) << ",";
  o << "\n};\n";
}

std::string model_header(const CompressedModel& m, const std::vector<CLayer>& layers) {
  std::ostringstream o, table;
  int64_t flash = 0, largest = 0, largest_quantized = 0;
  const int64_t input_size =
      chw(m.model.graph().inputs()[0])[0] * chw(m.model.graph().inputs()[0])[1] * chw(m.model.graph().inputs()[0])[2];
  o << "/* Written by adze export --format c-header from " << m.dir << ". The weights are the Encodings' integer\n"
    << " * codes; see adze_mcu.h for what each field means. */\n#ifndef ADZE_MODEL_H\n#define ADZE_MODEL_H\n\n"
    << "#include \"adze_mcu.h\"\n\n";
  largest = input_size;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const CLayer& l = layers[i];
    const std::string id = std::to_string(i);
    std::string weight = "0", scale = "0", bias = "0";
    int bits = 0, per_channel = 0;
    if (l.weight) {
      const Encoding& e = *l.weight;
      bits = e.config.weight_bits;
      const std::vector<int8_t> w = weight_bytes(e);
      array(o, "int8_t", "adze_w" + id, w, [](int8_t v) { return std::to_string(v); });
      const at::Tensor s = e.scale.to(torch::kFloat).contiguous();
      std::vector<float> scales(s.data_ptr<float>(), s.data_ptr<float>() + s.numel());
      array(o, "float", "adze_s" + id, scales, hex_float);
      weight = "adze_w" + id;
      scale = "adze_s" + id;
      per_channel = scales.size() > 1;
      flash += static_cast<int64_t>(w.size() + scales.size() * 4);
    }
    if (l.bias.defined()) {
      std::vector<float> b(l.bias.data_ptr<float>(), l.bias.data_ptr<float>() + l.bias.numel());
      array(o, "float", "adze_b" + id, b, hex_float);
      bias = "adze_b" + id;
      flash += l.bias.numel() * 4;
    }
    const auto& k = l.kernel;
    const auto& s = l.stride;
    const auto& p = l.pad;
    const auto& d = l.dilation;
    table << "  {" << l.op << ", " << l.in[0] << ", " << l.in[1] << ", " << l.in[2] << ", " << l.out[0] << ", "
          << l.out[1] << ", " << l.out[2] << ", " << k[0] << ", " << k[1] << ", " << s[0] << ", " << s[1] << ", "
          << p[0] << ", " << p[1] << ", " << d[0] << ", " << d[1] << ", " << l.groups << ", " << bits << ", " << weight
          << ", " << scale << ", " << per_channel << ", " << bias << ", " << (l.quantized_input ? 8 : 0) << ", "
          << hex_float(l.act_scale) << ", " << l.act_zero_point << "},\n";
    largest = std::max({largest, l.in[0] * l.in[1] * l.in[2], l.out[0] * l.out[1] * l.out[2]});
    if (l.quantized_input) largest_quantized = std::max(largest_quantized, l.in[0] * l.in[1] * l.in[2]);
  }
  const std::array<int64_t, 3> out = layers.empty() ? std::array<int64_t, 3>{input_size, 1, 1} : layers.back().out;
  o << "\nstatic const adze_layer adze_model_layers[] = {\n"
    << table.str() << "};\n\n"
    << "#define ADZE_MODEL_LAYERS " << layers.size() << "\n"
    << "#define ADZE_INPUT_SIZE " << input_size << "\n"
    << "#define ADZE_OUTPUT_SIZE " << out[0] * out[1] * out[2] << "\n"
    << "#define ADZE_BUFFER_FLOATS " << largest << "\n"
    << "#define ADZE_QBUFFER_BYTES " << std::max<int64_t>(1, largest_quantized) << "\n"
    << "/* flash: weight codes, scales and biases; SRAM: two activation buffers and the quantized input. */\n"
    << "#define ADZE_FLASH_BYTES " << flash << "\n"
    << "#define ADZE_SRAM_BYTES " << 2 * largest * 4 + std::max<int64_t>(1, largest_quantized) << "\n\n#endif\n";
  return o.str();
}

// The compiled program, compiled once. Each run is one process of it (the samples go through a pipe), and so
// is each timed call of bench().
class CProgramRunner : public Runner {
 public:
  explicit CProgramRunner(const std::string& dir) : program_(dir) {}
  std::string runtime_name() const override { return "C program"; }
  int64_t batch() const override { return 0; }
  at::Tensor run(const at::Tensor& x) override { return program_.run(x); }
  nlohmann::json describe() const override {
    return {{"notes", "the reference integer interpreter compiled for the host; each call starts the program"}};
  }

 private:
  c_header::CProgram program_;
};

class CHeaderExporter : public Exporter {
 public:
  const Contract& contract() const override {
    static const Contract c = [] {
      Contract k;
      k.weight_bits = {2, 3, 4, 5, 6, 7, 8};
      k.granularities = {Granularity::kPerTensor, Granularity::kPerChannel};
      k.act_bits = {0, 8};
      k.any_nm = k.unstructured = k.permutation = true;
      k.ops = {"aten::_convolution",
               "aten::linear",
               "aten::mm",
               "aten::matmul",
               "aten::addmm",
               "aten::t",
               "aten::add",
               "aten::relu",
               "aten::relu_",
               "aten::max_pool2d",
               "aten::adaptive_avg_pool2d",
               "aten::flatten",
               "aten::dropout",
               "aten::contiguous",
               "aten::view",
               "aten::reshape",
               "aten::fake_quantize_per_tensor_affine"};
      k.accelerated_weight_bits = {4, 8};
      k.notes =
          "int8 x uint8 products accumulate in int32 (CMSIS-NN style); 2-4-bit codes are stored two per byte; "
          "N:M is stored as zeros";
      return k;
    }();
    return c;
  }
  void write(const CompressedModel& m, const std::string& path) const override {
    const std::vector<CLayer> layers = Lowering(m).run();
    const std::string header = model_header(m, layers);
    write_directory_atomically(path, [&](const std::string& dir) {
      for (const auto& [name, text] :
           std::vector<std::pair<std::string, std::string>>{{"model.h", header},
                                                            {"adze_mcu.h", c_header::kMcuHeader},
                                                            {"adze_mcu.c", c_header::kMcuSource},
                                                            {"adze_host_main.c", c_header::kHostMain}})
        write_file_atomically(dir + "/" + name, text);
    });
  }
  bool recognizes(const std::string& path) const override {
    return std::filesystem::is_directory(path) && std::filesystem::exists(path + "/model.h");
  }
  std::string file_form() const override { return "a c-header directory (with model.h)"; }
  std::unique_ptr<Runner> open(const std::string& path, const RunnerOptions&) const override {
    return std::make_unique<CProgramRunner>(path);
  }
  // What the microcontroller needs, from model.h's own figures.
  std::vector<std::string> written_notes(const std::string& path) const override {
    std::vector<std::string> notes;
    std::istringstream header(read_file_text(path + "/model.h"));
    std::string line;
    while (std::getline(header, line))
      for (const auto& [key, what] :
           {std::pair<std::string, std::string>{"ADZE_FLASH_BYTES", "flash (weights, scales, biases)"},
            {"ADZE_SRAM_BYTES", "peak SRAM (activation buffers)"}})
        if (line.rfind("#define " + key + " ", 0) == 0)
          notes.push_back(what + ": " + line.substr(9 + key.size()) + " bytes");
    return notes;
  }
};

}  // namespace

Registry<Exporter>::Entry c_header_exporter_entry() {
  return {"c-header",
          "C99 for microcontrollers: model.h (int8/int4 codes, scales, layer table) + a reference integer interpreter",
          {},
          [](const nlohmann::json&) { return std::make_unique<CHeaderExporter>(); }};
}

}  // namespace adze
