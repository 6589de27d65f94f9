// Replays fuzz corpora through a LLVMFuzzerTestOneInput, for the plain
// cc_test form of each fuzz target: every file under each directory named
// on the command line (relative to the test's runfiles) is one input.
// Fails if a directory is missing or empty (a test that replays nothing
// would pass without checking anything).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::size_t replayed = 0;
  for (int i = 1; i < argc; ++i) {
    const fs::path dir(argv[i]);
    if (!fs::is_directory(dir)) {
      std::fprintf(stderr, "replay: no corpus directory %s\n", argv[i]);
      return 1;
    }
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
    if (files.empty()) {
      std::fprintf(stderr, "replay: corpus directory %s is empty\n", argv[i]);
      return 1;
    }
    for (const fs::path& f : files) {
      std::ifstream in(f, std::ios::binary);
      std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
      LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                             bytes.size());
      ++replayed;
    }
  }
  std::printf("replay: %zu inputs, no failure\n", replayed);
  return replayed == 0 ? 1 : 0;
}
