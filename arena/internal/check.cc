#include "arena/internal/check.h"

#include <cstdio>
#include <cstdlib>

namespace arena {
namespace internal {

void CheckFailed(const char* file, int line, const char* condition,
                 const char* message) {
  std::fprintf(stderr, "arena: check failed at %s:%d: %s: %s\n", file, line,
               condition, message);
  std::fflush(stderr);
  std::abort();
}

}  // namespace internal
}  // namespace arena
