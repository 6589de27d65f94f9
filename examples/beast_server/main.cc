// beast_server: server_demo's /hello and /json?items=N on Boost.Beast, with
// per-request memory in an arena (or std::allocator, to compare).
//
//   beast_server [--port=8080] [--bind=127.0.0.1] [--threads=1]
//                [--allocator=arena|std]
//
// Prints "listening on ADDRESS:PORT" (the real port when --port=0) once it
// accepts; SIGINT/SIGTERM stop it and print the arena's process stats to
// stderr. Exit status: 0 after a signal, 2 bad flags, 1 other failure.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/signal_set.hpp>

#include "absl/strings/numbers.h"
#include "arena/arena.h"
#include "arena/stats.h"
#include "examples/beast_server/server.h"

namespace beast_server {
namespace {

constexpr char kUsage[] =
    "usage: beast_server [--port=8080] [--bind=127.0.0.1] [--threads=1] "
    "[--allocator=arena|std]\n";

struct Flags {
  int port = 8080;
  std::string bind = "127.0.0.1";
  int threads = 1;
  std::string allocator = "arena";
};

[[noreturn]] void BadFlag(const std::string& message) {
  std::fprintf(stderr, "beast_server: %s\n%s", message.c_str(), kUsage);
  std::exit(2);
}

Flags ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    const std::size_t eq = arg.find('=');
    if (arg.rfind("--", 0) != 0 || eq == std::string::npos) BadFlag("bad argument " + arg);
    const std::string name = arg.substr(2, eq - 2);
    const std::string value = arg.substr(eq + 1);
    if (name == "port") {
      if (!absl::SimpleAtoi(value, &flags.port) || flags.port < 0 || flags.port > 65535) {
        BadFlag("--port must be 0..65535");
      }
    } else if (name == "threads") {
      if (!absl::SimpleAtoi(value, &flags.threads) || flags.threads < 1 ||
          flags.threads > 256) {
        BadFlag("--threads must be 1..256");
      }
    } else if (name == "bind") {
      flags.bind = value;
    } else if (name == "allocator") {
      if (value != "arena" && value != "std") BadFlag("--allocator must be arena or std");
      flags.allocator = value;
    } else {
      BadFlag("unknown flag --" + name);
    }
  }
  return flags;
}

int Run(const Flags& flags) {
  asio::io_context ioc(flags.threads);
  beast::error_code ec;
  const auto address = asio::ip::make_address(flags.bind, ec);
  if (ec) BadFlag("--bind: " + ec.message());
  tcp::acceptor acceptor(ioc);
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(flags.port));
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::fprintf(stderr, "beast_server: cannot listen on %s:%d: %s\n", flags.bind.c_str(),
                 flags.port, ec.message().c_str());
    return 1;
  }
  const tcp::endpoint bound = acceptor.local_endpoint();
  if (flags.allocator == "arena") {
    std::make_shared<Listener<ArenaMemory>>(ioc, std::move(acceptor))->Start();
  } else {
    std::make_shared<Listener<StdMemory>>(ioc, std::move(acceptor))->Start();
  }
  std::printf("listening on %s:%d\n", bound.address().to_string().c_str(), bound.port());
  std::fflush(stdout);

  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&ioc](beast::error_code, int) { ioc.stop(); });
  std::vector<std::thread> threads;
  for (int i = 1; i < flags.threads; ++i) threads.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (std::thread& t : threads) t.join();
  if (flags.allocator == "arena") {
    std::fprintf(stderr, "%s\n", arena::ToJson(arena::GlobalStats()).c_str());
  }
  return 0;
}

}  // namespace
}  // namespace beast_server

int main(int argc, char** argv) {
  return beast_server::Run(beast_server::ParseFlags(argc, argv));
}
