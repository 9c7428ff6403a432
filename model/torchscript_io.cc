#include "model/torchscript_io.h"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/script.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>

#include "core/error.h"
#include "core/files.h"
#include "model/model.h"

namespace adze {
namespace {

std::vector<std::string> split_name(const std::string& name) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    auto dot = name.find('.', start);
    parts.push_back(name.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

// Builds the module tree and registers every named tensor at its path.
class ModuleBuilder {
 public:
  explicit ModuleBuilder(torch::jit::Module& root) : root_(root) {}

  void add(const std::string& name, const at::Tensor& value, bool is_parameter) {
    auto parts = split_name(name);
    const std::string leaf = parts.back();
    parts.pop_back();
    torch::jit::Module owner = module_at(parts);
    if (owner.hasattr(leaf))
      throw Error(ErrorKind::kInternal, "failed to save model: name '" + name + "' is used twice");
    if (is_parameter)
      owner.register_parameter(leaf, value.detach(), /*is_buffer=*/false);
    else
      owner.register_buffer(leaf, value.detach());
  }

 private:
  torch::jit::Module module_at(const std::vector<std::string>& path) {
    torch::jit::Module current = root_;
    std::string prefix;
    for (const auto& part : path) {
      prefix += (prefix.empty() ? "" : ".") + part;
      auto it = modules_.find(prefix);
      if (it == modules_.end()) {
        torch::jit::Module child(c10::QualifiedName(*root_.type()->name(), "m" + std::to_string(modules_.size())),
                                 root_._ivalue()->compilation_unit(), /*shouldMangle=*/true);
        current.register_module(part, child);
        it = modules_.emplace(prefix, child).first;
      }
      current = it->second;
    }
    return current;
  }

  torch::jit::Module& root_;
  std::map<std::string, torch::jit::Module> modules_;
};

}  // namespace

void save_torchscript(const Model& model, const std::string& path,
                      const std::map<std::string, std::string>& extra_files) {
  torch::jit::Module root(c10::QualifiedName("__torch__.adze.CompressedModel"));
  ModuleBuilder builder(root);
  for (const auto& t : model.tensors()) {
    builder.add(t.name, t.value, t.is_parameter);
    for (const auto& alias : t.aliases) builder.add(alias, t.value, t.is_parameter);
  }

  std::shared_ptr<torch::jit::Graph> graph = model.graph().copy();
  torch::jit::Value* self = graph->insertInput(0, "self");
  self->setType(root.type());
  {
    torch::jit::WithInsertPoint guard(graph->block()->nodes().front());
    for (std::size_t i = graph->inputs().size() - 1; i >= 2; --i) {
      torch::jit::Value* input = graph->inputs()[i];
      const NamedTensor* bound = model.tensor_of(model.graph().inputs()[i - 1]);
      if (!bound)
        throw Error(ErrorKind::kInternal, "failed to save model: graph input " + std::to_string(i) + " is unbound");
      torch::jit::Value* value = self;
      for (const auto& part : split_name(bound->name)) value = graph->insertGetAttr(value, part);
      input->replaceAllUsesWith(value);
      graph->eraseInput(i);
    }
  }
  auto* cu = root._ivalue()->compilation_unit().get();
  auto* fn = cu->create_function(c10::QualifiedName(*root.type()->name(), "forward"), graph);
  root.type()->addMethod(fn);
  write_atomically(path, [&](const std::string& tmp) {
    try {
      // Saved through a stream so that the archive's inner folder name does not depend on the (temporary)
      // file name: the same model gives the same bytes.
      std::ofstream out(tmp, std::ios::binary);
      root.save(out, torch::jit::ExtraFilesMap(extra_files.begin(), extra_files.end()));
      out.close();
      if (!out) throw Error(ErrorKind::kIo, "failed to write model '" + path + "': " + std::strerror(errno));
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error(ErrorKind::kIo, "failed to save model '" + path + "': " + first_line_of(e));
    }
  });
}

}  // namespace adze
