#include <fstream>
#include <string>

#include "bench/peers.h"

namespace arena_bench {

const char* LoadedMalloc() {
  // The preloaded malloc shows up as a mapped library; otherwise it is glibc.
  static const char* loaded = [] {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
      if (line.find("libjemalloc") != std::string::npos) return "jemalloc";
      if (line.find("libtcmalloc") != std::string::npos) return "tcmalloc";
      if (line.find("libmimalloc") != std::string::npos) return "mimalloc";
    }
    return "glibc";
  }();
  return loaded;
}

}  // namespace arena_bench
