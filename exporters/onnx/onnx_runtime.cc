#include "exporters/onnx/onnx_runtime.h"

#include <torch/torch.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "core/files.h"

namespace adze {

at::Tensor run_in_onnx_runtime(const std::string& model, const at::Tensor& x, int64_t batch,
                               const std::string& optimization) {
  const char* module = std::getenv("ADZE_ORT_MODULE");
  const std::string ort = module ? module : ADZE_DEFAULT_ORT_MODULE;
  const std::string runner = ADZE_ORT_RUNNER;
  require_readable_file(runner, "ONNX Runtime runner");
  if (!std::filesystem::exists(ort))
    throw Error(ErrorKind::kIo,
                "ONNX Runtime not found at '" + ort + "' (run scripts/install-ort.sh, or set ADZE_ORT_MODULE)");
  static std::atomic<int> calls{0};
  const auto dir = std::filesystem::temp_directory_path() /
                   ("adze-ort-" + std::to_string(::getpid()) + "-" + std::to_string(calls++));
  std::filesystem::create_directories(dir);
  struct Cleanup {
    std::filesystem::path p;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(p, ec);
    }
  } cleanup{dir};
  const at::Tensor input = x.contiguous();
  write_file_atomically((dir / "input.bin").string(),
                        std::string(static_cast<const char*>(input.data_ptr()), input.numel() * input.element_size()));
  std::string shape = std::to_string(batch);
  for (int64_t d = 1; d < x.dim(); ++d) shape += "x" + std::to_string(x.size(d));
  const std::string cmd = "ADZE_ORT_MODULE='" + ort + "' ADZE_ORT_OPTIMIZATION='" + optimization + "' node '" + runner +
                          "' '" + model + "' '" + (dir / "input.bin").string() + "' " + shape + " " +
                          (x.scalar_type() == at::kLong ? "int64" : "float32") + " '" + (dir / "output.bin").string() +
                          "' > '" + (dir / "log").string() + "' 2>&1";
  if (std::system(cmd.c_str()) != 0)
    throw Error(ErrorKind::kInvalidArgument,
                "ONNX Runtime failed on '" + model + "': " + read_file_text((dir / "log").string()));
  const auto bytes = read_file_bytes((dir / "output.bin").string());
  return torch::from_blob(const_cast<char*>(bytes.data()), {static_cast<int64_t>(bytes.size() / 4)}, torch::kFloat)
      .clone();
}

}  // namespace adze
