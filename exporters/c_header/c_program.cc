#include "exporters/c_header/c_program.h"

#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/files.h"

namespace adze {
namespace c_header {

CProgram::CProgram(const std::string& dir) {
  for (const char* f : {"model.h", "adze_mcu.h", "adze_mcu.c", "adze_host_main.c"})
    require_readable_file(dir + "/" + f, "c-header export file");
  program_ = (scratch_.path() / "model").string();
  const std::string log = (scratch_.path() / "cc.log").string();
  const char* cc = std::getenv("CC");
  const std::string compile = std::string(cc && *cc ? cc : "cc") + " -std=c99 -Wall -Wextra -Werror -O2 -I" +
                              shell_quoted(dir) + " -o " + shell_quoted(program_) + " " +
                              shell_quoted(dir + "/adze_host_main.c") + " " + shell_quoted(dir + "/adze_mcu.c") +
                              " -lm > " + shell_quoted(log) + " 2>&1";
  if (std::system(compile.c_str()) != 0) {
    const std::string output = read_file_text(log);
    throw Error(ErrorKind::kIo, "c-header: '" + dir + "' does not compile (" + compile + "):\n" + output);
  }
}

CProgram::~CProgram() = default;

at::Tensor CProgram::run(const at::Tensor& x) const {
  const at::Tensor input = x.to(torch::kFloat).contiguous();
  const std::string in = (scratch_.path() / "in.bin").string(), out = (scratch_.path() / "out.bin").string();
  std::ofstream(in, std::ios::binary)
      .write(static_cast<const char*>(input.data_ptr()), static_cast<std::streamsize>(input.numel() * 4));
  const std::string run = shell_quoted(program_) + " < " + shell_quoted(in) + " > " + shell_quoted(out);
  if (std::system(run.c_str()) != 0) throw Error(ErrorKind::kIo, "c-header: the compiled model failed (" + run + ")");
  const std::vector<char> bytes = read_file_bytes(out);
  const int64_t n = x.size(0), floats = static_cast<int64_t>(bytes.size() / 4);
  if (n == 0 || floats % n != 0)
    throw Error(ErrorKind::kIo, "c-header: the compiled model wrote " + std::to_string(floats) + " floats for " +
                                    std::to_string(n) + " samples");
  at::Tensor result = torch::empty({n, floats / n}, torch::kFloat);
  std::memcpy(result.data_ptr(), bytes.data(), static_cast<std::size_t>(floats) * 4);
  return result;
}

at::Tensor compile_and_run(const std::string& dir, const at::Tensor& x) { return CProgram(dir).run(x); }

}  // namespace c_header
}  // namespace adze
