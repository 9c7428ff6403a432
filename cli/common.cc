#include <c10/util/Exception.h>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "core/error.h"
#include "examples/reference/reference.h"

namespace adze::cli {

GlobalOptions& global_options() {
  static GlobalOptions options;
  return options;
}

bool show_progress(bool json) { return !json && !global_options().quiet; }

int report_current_exception() {
  try {
    throw;
  } catch (const CheckFailed&) {
    return 1;
  } catch (const Unsatisfiable&) {
    return 3;
  } catch (const Error& e) {
    std::cerr << "adze: error: " << e.what() << "\n";
    return e.is_user_error() ? 2 : 1;
  } catch (const c10::Error& e) {
    std::cerr << "adze: internal error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "adze: internal error: " << first_line_of(e) << "\n";
    return 1;
  }
}

}  // namespace adze::cli
