#include "server_demo/connection.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <new>

#include "absl/strings/str_cat.h"

namespace server_demo {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::size_t kReadBudget = 256 * 1024;  // bytes read per wake-up
constexpr int kRequestBudget = 64;                // requests per wake-up
// Unread input a connection may hold beyond max_header_bytes; past it the
// connection is not read until the requests buffered are served.
constexpr std::size_t kInputSlack = 64 * 1024;

// Sent when the server cannot build a response in the request's memory.
constexpr absl::string_view kOverloaded =
    "HTTP/1.1 503 Service Unavailable\r\nServer: arena-demo\r\n"
    "Content-Type: text/plain\r\nContent-Length: 45\r\nConnection: close\r\n\r\n"
    "request exceeded the per-request memory cap\r\n";
constexpr absl::string_view k408 =
    "HTTP/1.1 408 Request Timeout\r\nServer: arena-demo\r\nContent-Type: text/plain\r\n"
    "Content-Length: 16\r\nConnection: close\r\n\r\nrequest timeout\n";

}  // namespace

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             Clock::now().time_since_epoch())
      .count();
}

Connection::Connection(LoopContext* loop, int fd, std::int64_t now)
    : loop_(loop),
      fd_(fd),
      parser_(HttpLimits{loop->config->max_header_bytes, loop->config->max_body_bytes}),
      last_active_ms_(now) {
  memory_.SetLiveGauge(&loop->metrics->live_request_bytes);
  if (cfg().allocator == "arena" && cfg().arena_scope == "connection") {
    arena::ArenaOptions options;
    options.max_bytes = cfg().request_memory_limit + (1 << 20);
    arena_ = std::make_unique<arena::Arena>(options);
  }
}

Connection::~Connection() {
  for (Pending& p : out_) Release(p);
  out_.clear();
  // What is left lives in the connection arena, destroyed with us.
  memory_.DropLive(memory_.live());
  if (pinned_ != 0) loop_->shared->pinned_bytes.fetch_sub(pinned_, std::memory_order_relaxed);
}

std::size_t Connection::InputCap() const { return cfg().max_header_bytes + kInputSlack; }

bool Connection::OnEvents(std::uint32_t events, std::int64_t now) {
  if ((events & EPOLLOUT) || ((events & (EPOLLERR | EPOLLHUP)) && !out_.empty())) {
    if (!Flush(now)) return false;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
    if (reading_) return Read(now);
    if ((events & EPOLLERR) && out_.empty() && !queued_) return Close(CloseReason::kIoError);
  }
  return true;
}

bool Connection::OnReady(std::int64_t now) {
  queued_ = false;
  return Process(now);
}

bool Connection::Read(std::int64_t now) {
  std::size_t total = 0;
  bool eof = false, error = false;
  const std::size_t cap = InputCap();
  const bool body = parser_.in_body();
  while (total < kReadBudget && in_.size() < cap) {
    const std::size_t want = std::min(kReadChunk, cap - in_.size());
    const std::size_t old = in_.size();
    in_.resize(old + want);
    const ssize_t n = recv(fd_, &in_[old], want, 0);
    if (n <= 0) {
      in_.resize(old);
      if (n == 0) {
        eof = true;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        error = true;
      }
      break;
    }
    in_.resize(old + n);
    total += n;
    if (static_cast<std::size_t>(n) < want) break;
  }
  ServerMetrics::Add(loop_->metrics->bytes_in, total);
  loop_->metrics->NoteInput(in_.size());
  if (body) window_bytes_ += total;
  if (error) return Close(CloseReason::kIoError);
  if (eof) {
    // The client is done sending: answer every complete request, then close.
    peer_eof_ = true;
    reading_ = false;
    UpdateInterest();
  }
  return Process(now);
}

void Connection::Release(Pending& p) {
  if (p.wire != nullptr && p.request_arena == nullptr && arena_ == nullptr) {
    // Malloc mode: the response string lives on the heap.
    p.wire->~basic_string();
    memory_.deallocate(p.wire, sizeof(std::pmr::string), alignof(std::pmr::string));
  }
  p.wire = nullptr;
  if (p.request_arena != nullptr) {
    p.request_arena.reset();
    memory_.DropLive(p.live);
    p.live = 0;
  }
}

void Connection::ResetArena() {
  arena_->Reset();
  memory_.DropLive(memory_.live());
}

void Connection::RecordFootprint(const Pending& p) {
  std::size_t slow = 0;
  if (arena_ != nullptr) {
    slow = arena_->stats().slow_allocations - slow_at_begin_;
  } else if (p.request_arena != nullptr) {
    slow = p.request_arena->stats().slow_allocations;
  }
  const std::size_t held = memory_.PeakHeld();
  const std::size_t peak = memory_.peak_live();
  RequestFootprint& f = loop_->metrics->footprint;
  f.requested_bytes.Record(memory_.used());
  f.small_bytes.Record(memory_.small_bytes());
  f.held_bytes.Record(held);
  f.waste_bytes.Record(held > peak ? held - peak : 0);
  f.slow_paths.Record(slow);
  f.large_allocations.Record(memory_.large_allocations());
  ServerMetrics::Add(loop_->metrics->peak_live_bytes_total, std::min(peak, held));
  ServerMetrics::Add(loop_->metrics->held_bytes_total, held);
}

void Connection::Queue(Pending&& p, std::int64_t now) {
  if (out_.empty()) send_progress_ms_ = now;
  out_bytes_ += p.size - p.written;
  out_pinned_ += p.pinned;
  out_.push_back(std::move(p));
  SyncPinned();
}

void Connection::QueueStatic(absl::string_view bytes, std::int64_t now) {
  Pending p;
  p.data = bytes.data();
  p.size = bytes.size();
  Queue(std::move(p), now);
}

// An unsent response pins its memory: with a connection arena, the whole
// arena (it is Reset only once every response is written); otherwise what
// each queued request holds.
void Connection::SyncPinned() {
  std::int64_t pinned = 0;
  if (!out_.empty()) {
    pinned = static_cast<std::int64_t>(arena_ != nullptr ? arena_->stats().block_bytes
                                                         : out_pinned_);
  }
  if (pinned != pinned_) {
    loop_->shared->pinned_bytes.fetch_add(pinned - pinned_, std::memory_order_relaxed);
    pinned_ = pinned;
  }
}

void Connection::Finish(CloseReason reason) {
  if (finished_) return;
  finished_ = true;
  finish_reason_ = reason;
  more_ = false;
}

bool Connection::Close(CloseReason reason) {
  close_reason_ = reason;
  return false;
}

void Connection::SendBestEffort(absl::string_view bytes) {
  (void)!send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

void Connection::UpdateInterest() {
  const bool should_read = !peer_eof_ && !finished_ &&
                           out_bytes_ <= cfg().max_pending_output && in_.size() < InputCap();
  const bool want_write = !out_.empty();
  if (should_read == reading_ && want_write == want_write_) return;
  reading_ = should_read;
  want_write_ = want_write;
  epoll_event ev{};
  ev.events = (reading_ ? static_cast<std::uint32_t>(EPOLLIN | EPOLLRDHUP) : 0u) |
              (want_write_ ? static_cast<std::uint32_t>(EPOLLOUT) : 0u);
  ev.data.fd = fd_;
  epoll_ctl(loop_->epoll_fd, EPOLL_CTL_MOD, fd_, &ev);
}

void Connection::UpdateTimers(std::int64_t now) {
  if (parser_.in_body()) {
    head_start_ms_ = 0;
    if (window_start_ms_ == 0) {
      window_start_ms_ = now;
      window_bytes_ = 0;
    }
    return;
  }
  window_start_ms_ = 0;
  if (parser_.in_request() || !in_.empty()) {
    if (head_start_ms_ == 0) head_start_ms_ = now;
  } else {
    head_start_ms_ = 0;
  }
}

bool Connection::Process(std::int64_t now) {
  std::size_t consumed = 0;
  int served = 0;
  bool stalled = false;  // stopped by a budget with input left
  while (!finished_) {
    if (served >= kRequestBudget || out_bytes_ > cfg().max_pending_output) {
      stalled = consumed < in_.size();
      break;
    }
    if (consumed == in_.size()) break;
    if (!ServeOne(&consumed, now)) break;
    ++served;
  }
  if (finished_) {
    in_.clear();
  } else if (consumed != 0) {
    in_.erase(0, consumed);
  }
  more_ = stalled;
  if (stalled && served >= kRequestBudget && !queued_) {
    // More complete requests may be buffered: serve them next round.
    queued_ = true;
    loop_->ready.push_back(fd_);
  }
  // A half-closed client: once no complete request is left, nothing more
  // will come.
  if (peer_eof_ && !stalled) Finish(CloseReason::kPeerClosed);
  UpdateTimers(now);
  UpdateInterest();
  return Flush(now);
}

bool Connection::ServeOne(std::size_t* consumed, std::int64_t now) {
  const auto start = Clock::now();
  Pending p;
  std::pmr::memory_resource* upstream = std::pmr::new_delete_resource();
  if (arena_ != nullptr) {
    upstream = arena_->resource();
  } else if (cfg().allocator == "arena") {
    arena::ArenaOptions options;
    options.max_bytes = cfg().request_memory_limit + (1 << 20);
    p.request_arena = std::make_unique<arena::Arena>(options);
    upstream = p.request_arena->resource();
  }
  slow_at_begin_ = arena_ != nullptr ? arena_->stats().slow_allocations : 0;
  memory_.Begin(upstream, arena_ != nullptr ? arena_.get() : p.request_arena.get(),
                cfg().request_memory_limit, loop_->shared->config.arena.large_threshold);
  const std::int64_t live_before = memory_.live();
  // A request arena not queued (the head is incomplete) dies with `p`:
  // take what is left in it off the live count. Runs before p's destructor.
  struct DropUnqueued {
    Connection* c;
    Pending* p;
    std::int64_t before;
    ~DropUnqueued() {
      if (p->request_arena != nullptr) c->memory_.DropLive(c->memory_.live() - before);
    }
  } drop_unqueued{this, &p, live_before};
  int status = 0;
  const absl::string_view input = absl::string_view(in_).substr(*consumed);
  try {
    HttpRequest request(&memory_);
    const ParseResult r = parser_.Parse(input, &memory_, &request);
    *consumed += r.consumed;
    if (r.status == ParseStatus::kIncomplete) {
      if (r.send_continue && !continue_sent_) {
        continue_sent_ = true;
        QueueStatic("HTTP/1.1 100 Continue\r\n\r\n", now);
      }
      return false;
    }
    p.wire = ::new (memory_.allocate(sizeof(std::pmr::string), alignof(std::pmr::string)))
        std::pmr::string(&memory_);
    if (r.status == ParseStatus::kError) {
      status = r.error_status;
      AppendResponse(p.wire, status, "text/plain", absl::StrCat(r.error_message, "\n"), false,
                     false);
      Finish(CloseReason::kProtocolError);
    } else {
      continue_sent_ = false;
      head_start_ms_ = 0;
      // Shutting down: answer this one with "Connection: close".
      if (loop_->draining) request.keep_alive = false;
      if (!request.keep_alive) Finish(CloseReason::kDone);
      // The small observability routes stay open, so that an operator
      // can see which limit fired.
      const bool observability =
          request.path == "/metrics" || request.path == "/stats" || request.path == "/healthz";
      if (!observability && loop_->shared->pinned_bytes.load(std::memory_order_relaxed) >=
                                static_cast<std::int64_t>(cfg().max_pinned_bytes)) {
        // Unsent responses hold too much memory: refuse new work.
        status = 503;
        loop_->metrics->CountReject(RejectReason::kPinnedMemory);
        AppendResponse(p.wire, status, "text/plain", "server memory busy, retry later\n",
                       request.keep_alive, request.minor_version == 0);
      } else {
        HandlerContext context{&cfg(), loop_->shared->view};
        context.memory_left = memory_.limit() - memory_.used();
        status = HandleRequest(request, &memory_, context, p.wire);
        if (status == 503) loop_->metrics->CountReject(RejectReason::kTooExpensive);
      }
    }
  } catch (const std::bad_alloc&) {
    if (p.request_arena != nullptr) p.live = memory_.live() - live_before;
    RecordFootprint(p);
    Release(p);
    status = 503;
    loop_->metrics->CountReject(RejectReason::kRequestMemory);
    *consumed = in_.size();
    QueueStatic(kOverloaded, now);
    Finish(CloseReason::kOverload);
    finish_reason_ = CloseReason::kOverload;  // (even if finished before the throw)
  }
  if (p.wire != nullptr) {
    if (p.request_arena != nullptr) p.live = memory_.live() - live_before;
    RecordFootprint(p);
    p.data = p.wire->data();
    p.size = p.wire->size();
    if (p.request_arena != nullptr) {
      p.pinned = p.request_arena->stats().block_bytes;
    } else if (arena_ == nullptr) {
      p.pinned = memory_.used();
    }
    Queue(std::move(p), now);
  }
  ServerMetrics& m = *loop_->metrics;
  m.CountStatus(status);
  ServerMetrics::Add(m.requests, 1);
  ServerMetrics::Add(m.request_memory_bytes, memory_.used());
  m.latency_us.Record(static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count()));
  return !finished_;
}

bool Connection::Flush(std::int64_t now) {
  const bool had_output = !out_.empty();
  while (!out_.empty()) {
    iovec iov[64];
    int n = 0;
    for (auto it = out_.begin(); it != out_.end() && n < 64; ++it, ++n) {
      iov[n].iov_base = const_cast<char*>(it->data + it->written);
      iov[n].iov_len = it->size - it->written;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    const ssize_t w = sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      return Close(CloseReason::kIoError);
    }
    ServerMetrics::Add(loop_->metrics->bytes_out, w);
    send_progress_ms_ = now;
    std::size_t left = w;
    out_bytes_ -= left;
    while (left > 0) {
      Pending& front = out_.front();
      const std::size_t rest = front.size - front.written;
      if (left < rest) {
        front.written += left;
        left = 0;
      } else {
        left -= rest;
        out_pinned_ -= front.pinned;
        Release(front);
        out_.pop_front();
      }
    }
  }
  if (out_.empty()) {
    if (had_output) {
      // Every response written: the connection's request memory goes back
      // in one Reset, and the client's clocks restart (they do not run
      // while the client waits for us).
      if (arena_ != nullptr && !finished_) ResetArena();
      last_active_ms_ = now;
      if (head_start_ms_ != 0) head_start_ms_ = now;
      if (window_start_ms_ != 0) {
        window_start_ms_ = now;
        window_bytes_ = 0;
      }
    }
    if (finished_) {
      SyncPinned();
      return Close(finish_reason_);
    }
  }
  SyncPinned();
  if (more_ && !queued_ && out_bytes_ <= cfg().max_pending_output) {
    // Output drained below the limit: serve what is buffered.
    queued_ = true;
    loop_->ready.push_back(fd_);
  }
  UpdateInterest();
  return true;
}

bool Connection::CheckDeadlines(std::int64_t now) {
  if (!out_.empty()) {
    if (now - send_progress_ms_ >= cfg().send_timeout_ms) {
      return Close(CloseReason::kSendTimeout);
    }
    return true;
  }
  if (queued_ || finished_ || peer_eof_) return true;
  if (window_start_ms_ != 0) {
    const std::int64_t elapsed = now - window_start_ms_;
    if (cfg().min_body_rate != 0 && elapsed >= cfg().body_rate_window_ms) {
      if (window_bytes_ * 1000 < cfg().min_body_rate * static_cast<std::size_t>(elapsed)) {
        loop_->metrics->CountStatus(408);
        SendBestEffort(k408);
        return Close(CloseReason::kBodyTooSlow);
      }
      window_start_ms_ = now;
      window_bytes_ = 0;
    }
    return true;
  }
  if (head_start_ms_ != 0) {
    if (now - head_start_ms_ >= cfg().header_timeout_ms) {
      loop_->metrics->CountStatus(408);
      SendBestEffort(k408);
      return Close(CloseReason::kHeaderTimeout);
    }
    return true;
  }
  if (now - last_active_ms_ >= cfg().idle_timeout_ms) return Close(CloseReason::kIdle);
  return true;
}

bool Connection::IdleForShutdown() const {
  return out_.empty() && in_.empty() && !parser_.in_request() && !queued_;
}

bool Connection::Evictable() const {
  return out_.empty() && !queued_ && !finished_ && !peer_eof_ && !parser_.in_body();
}

std::int64_t Connection::waiting_since() const {
  return head_start_ms_ != 0 ? head_start_ms_ : last_active_ms_;
}

void Connection::Evict() {
  if (head_start_ms_ != 0) {
    loop_->metrics->CountStatus(408);
    SendBestEffort(k408);
  }
  close_reason_ = CloseReason::kEvicted;
}

}  // namespace server_demo
