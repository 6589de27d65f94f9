// Worker: one event loop of the demo server. Each worker has its own
// listening socket on the shared port (SO_REUSEPORT: the kernel spreads
// connections), its own epoll set and its own connections, and runs on its
// own thread. It accepts (at max_connections it evicts its oldest connection
// still waiting for a request head, else answers 503; out of descriptors it
// sheds with a spare descriptor, and pauses accepting when the spare is
// gone, so that a level-triggered listen socket cannot spin), dispatches
// socket events to Connections, sweeps deadlines every tick, calls
// arena::OnThreadIdle() when idle, and drains on shutdown.
//
// Thread-safety: Listen, StartThread, Join and the destructor are called by
// the owning Server's thread; Wake from any thread; metrics() may be read
// from any thread (relaxed atomics). Everything else runs on the worker's
// thread.
#ifndef SERVER_DEMO_WORKER_H_
#define SERVER_DEMO_WORKER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "server_demo/connection.h"
#include "server_demo/metrics.h"

namespace server_demo {

class Worker {
 public:
  explicit Worker(ServerShared* shared);
  ~Worker();  // joins; closes what is left
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Binds the listening socket; *port 0 picks one (and returns it).
  absl::Status Listen(const std::string& bind, int* port);
  void StartThread();
  void Join();
  void Wake();  // starts draining; any thread
  // Asks this worker to evict one connection waiting for a head; any thread.
  void RequestEviction();

  ServerMetrics& metrics() { return metrics_; }

 private:
  void Run();
  void AcceptSome(std::int64_t now);
  void ShedOneForDescriptors(std::int64_t now);
  void PauseAccepting(std::int64_t now);
  void Tick(std::int64_t now);
  bool EvictOne();
  bool EvictElsewhere();
  void EvictRequested();
  void StartDraining();
  void CloseConnection(Connection* c, CloseReason reason);
  void CloseIf(Connection* c, bool keep);

  ServerShared* const shared_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  int evict_fd_ = -1;  // RequestEviction() wakes the loop
  // Evictions other workers asked for; relaxed: a count, publishes nothing.
  std::atomic<int> evictions_wanted_{0};
  int spare_fd_ = -1;  // given up to accept and shed one connection at EMFILE
  bool accept_paused_ = false;
  std::int64_t accept_resume_ms_ = 0;
  std::thread thread_;
  LoopContext loop_;
  absl::flat_hash_map<int, std::unique_ptr<Connection>> conns_;
  ServerMetrics metrics_;
};

}  // namespace server_demo

#endif  // SERVER_DEMO_WORKER_H_
