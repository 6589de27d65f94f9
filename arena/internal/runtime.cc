#include "arena/internal/runtime.h"

#include <pthread.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <thread>

#include "absl/numeric/bits.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "arena/internal/check.h"
#include "arena/internal/clock.h"
#include "arena/internal/sanitizer.h"
#include "arena/internal/thread_token.h"

namespace arena {
namespace internal {

__thread std::uint64_t tls_thread_id ARENA_TLS_INITIAL_EXEC = kNoThread;
__thread char tls_thread_token ARENA_TLS_INITIAL_EXEC = 0;

std::uint64_t AssignThreadId() noexcept {
  // Relaxed: the RMW order alone makes ids unique; they publish nothing.
  static std::atomic<std::uint64_t> next_id{kNoThread + 1};
  const std::uint64_t id = next_id.fetch_add(1, std::memory_order_relaxed);
  tls_thread_id = id;
  return id;
}

std::atomic<Runtime*> Runtime::instance_{nullptr};
__thread ThreadState* tls_thread_state ARENA_TLS_INITIAL_EXEC = nullptr;

namespace {

// Both live in static storage and are never destroyed (see runtime.h).
alignas(Runtime) unsigned char g_runtime_storage[sizeof(Runtime)];
alignas(MmapPageSource) unsigned char g_mmap_storage[sizeof(MmapPageSource)];

Mutex& StartMutex() {
  static Mutex* mu = new Mutex;
  return *mu;
}

// pthread_atfork handlers are registered once per process (under the start
// mutex), before any runtime exists, whatever happens to the starts.
bool g_fork_handlers_registered = false;

// Relaxed: a test switch, set before the Configure it affects.
std::atomic<bool> g_fail_next_thread_start{false};

// Set once this thread's exit hook ran: no state may be created any more.
__thread bool tls_exited ARENA_TLS_INITIAL_EXEC = false;
// After a failed state allocation: slow paths to skip before trying again,
// so that a heap that stays exhausted is not asked on every slow path.
__thread std::uint32_t tls_state_retry_in ARENA_TLS_INITIAL_EXEC = 0;
constexpr std::uint32_t kStateRetryInterval = 256;

// The exit hook: a pthread key whose destructor retires the thread's state.
// Not a C++ thread_local with a destructor: glibc registers those with
// calloc and aborts when that fails, while pthread_setspecific on one of
// the first keys never allocates (and reports an error if it must). The
// key's destructor runs after the thread's C++ thread_local destructors, so
// arenas destroyed by those still find the cache. Created once, with the
// fork handlers (under the start mutex).
pthread_key_t g_exit_key;

void RetireAtThreadExit(void* state) {
  tls_exited = true;
  tls_thread_state = nullptr;
  Runtime::RetireThread(static_cast<ThreadState*>(state));
}

std::string DescribeDifference(const Config& a, const Config& b) {
  std::vector<std::string> la = absl::StrSplit(ConfigToToml(a), '\n');
  std::vector<std::string> lb = absl::StrSplit(ConfigToToml(b), '\n');
  std::string out;
  for (std::size_t i = 0; i < la.size() && i < lb.size(); ++i) {
    if (la[i] != lb[i]) {
      absl::StrAppend(&out, out.empty() ? "" : "; ", "running: ", la[i],
                      ", asked: ", lb[i]);
    }
  }
  return out.empty() ? "a different page source" : out;
}

void ForkPrepare();
void ForkParent();
void ForkChild();

}  // namespace

Runtime::Runtime(const Config& config, PageSource* source)
    : config_(config),
      first_blocks_((config.first_block_hint + config.block_size - 1) /
                    config.block_size),
      source_(source),
      depot_(source, DepotOptions{config.block_size, config.depot_batch_blocks,
                                  config.depot_max_bytes}),
      large_cache_(source, config.large_cache_bytes) {}

void Runtime::FailNextThreadStartForTesting() {
  g_fail_next_thread_start.store(true, std::memory_order_relaxed);
}

absl::Status Runtime::Start(const Config& config, PageSource* source) {
  absl::Status valid = ValidateConfig(config);
  if (!valid.ok()) return valid;
  MutexLock lock(&StartMutex());
  Runtime* existing = instance_.load(std::memory_order_acquire);
  if (existing != nullptr) {
    if (existing->config_ == config &&
        (source == nullptr || source == existing->source_)) {
      return absl::OkStatus();
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "arena::Configure: the runtime already runs with another config (",
        DescribeDifference(existing->config_, config),
        "); configure once, before the first arena"));
  }
  if (!g_fork_handlers_registered) {
    int err = pthread_key_create(&g_exit_key, &RetireAtThreadExit);
    if (err != 0) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "arena::Configure: pthread_key_create failed: ", std::strerror(err)));
    }
    err = pthread_atfork(&ForkPrepare, &ForkParent, &ForkChild);
    if (err != 0) {
      pthread_key_delete(g_exit_key);
      return absl::ResourceExhaustedError(absl::StrCat(
          "arena::Configure: pthread_atfork failed: ", std::strerror(err)));
    }
    g_fork_handlers_registered = true;
  }
  if (source == nullptr) source = ::new (g_mmap_storage) MmapPageSource();
  const std::size_t previous_cap = source->max_mapped_bytes();
  source->set_max_mapped_bytes(config.max_total_bytes);
  auto* rt = ::new (g_runtime_storage) Runtime(config, source);
  // A failed start gives back what it mapped, restores the source's cap and
  // destroys the unpublished runtime, so that a later Configure starts from
  // nothing.
  auto fail = [rt, source, previous_cap](absl::Status status) {
    rt->depot_.Trim();
    rt->~Runtime();
    source->set_max_mapped_bytes(previous_cap);
    return status;
  };
  // Prewarm: map blocks into the depot now, so first requests find them.
  const std::size_t prewarm = config.prewarm_bytes / config.block_size;
  BlockHeader* list = nullptr;
  std::size_t mapped = 0;
  for (; mapped < prewarm; ++mapped) {
    BlockHeader* block = rt->depot_.MapBlock();
    if (block == nullptr) {
      while (list != nullptr) {
        BlockHeader* next = list->next.load(std::memory_order_relaxed);
        source->Unmap(list, config.block_size);
        list = next;
      }
      return fail(absl::ResourceExhaustedError(absl::StrCat(
          "arena config key 'prewarm_bytes' = ", config.prewarm_bytes,
          ": could only map ", mapped * config.block_size,
          " bytes; nothing is kept mapped")));
    }
    block->next.store(list, std::memory_order_relaxed);
    list = block;
  }
  if (mapped != 0) rt->depot_.Release(list, mapped, NowMs());
  if (config.background_release) {
    pthread_t thread;
    const int err =
        g_fail_next_thread_start.exchange(false, std::memory_order_relaxed)
            ? EAGAIN
            : pthread_create(&thread, nullptr, &Runtime::ReleaseThreadMain, rt);
    if (err != 0) {
      return fail(absl::ResourceExhaustedError(absl::StrCat(
          "arena::Configure: cannot start the background release thread "
          "(background_release = true): ",
          std::strerror(err), "; nothing is kept mapped, retry or start "
          "without it")));
    }
    pthread_detach(thread);
    rt->release_thread_running_.store(true, std::memory_order_relaxed);
  }
  // Release: publishes the constructed runtime to Get()'s acquire load.
  instance_.store(rt, std::memory_order_release);
  return absl::OkStatus();
}

void* Runtime::ReleaseThreadMain(void* runtime) {
  static_cast<Runtime*>(runtime)->ReleaseLoop();
  return nullptr;
}

Runtime& Runtime::StartDefault() {
  absl::StatusOr<Config> config = ApplyEnvironment(Config());
  if (!config.ok()) {
    const std::string message = std::string(config.status().message());
    CheckFailed(__FILE__, __LINE__, "ApplyEnvironment(Config())",
                message.c_str());
  }
  absl::Status status = Start(*config, nullptr);
  // A racing Configure may have won with another config; use whatever runs.
  Runtime* rt = instance_.load(std::memory_order_acquire);
  if (rt == nullptr) {
    const std::string message = std::string(status.message());
    CheckFailed(__FILE__, __LINE__, "Runtime::Start", message.c_str());
  }
  return *rt;
}

std::int64_t Runtime::NowMs() { return SteadyNowMs(); }

ThreadState* Runtime::LocalSlow() {
  if (tls_exited) return nullptr;
  if (tls_state_retry_in != 0) {
    --tls_state_retry_in;
    return nullptr;
  }
  // Reachable from noexcept paths (TryAllocate, Reset, ~Arena): without
  // heap the thread goes without a cache (nullptr: blocks come from and go
  // to the depot directly) and tries again kStateRetryInterval calls later.
  auto* state =
      new (std::nothrow) ThreadState(&depot_, config_.thread_cache_blocks);
  if (state == nullptr) {
    tls_state_retry_in = kStateRetryInterval;
    return nullptr;
  }
  // Schedules RetireThread for this thread's exit. Failure (ENOMEM): no
  // cache for now, as above.
  if (pthread_setspecific(g_exit_key, state) != 0) {
    delete state;
    tls_state_retry_in = kStateRetryInterval;
    return nullptr;
  }
  state->idle_since_ms = NowMs();
  Register(state);
  tls_thread_state = state;
  return state;
}

void Runtime::Register(ThreadState* state) {
  MutexLock lock(&registry_mu_);
  // A recycled account (its generation already moved on) or a new one;
  // without heap the thread keeps no block (state->retain stays null).
  if (free_accounts_ != nullptr) {
    state->retain = free_accounts_;
    free_accounts_ = free_accounts_->next_free;
    state->retain->next_free = nullptr;
  } else {
    state->retain = new (std::nothrow) RetainAccount;
  }
  state->next = threads_;
  if (threads_ != nullptr) threads_->prev = state;
  threads_ = state;
  ++thread_count_;
}

void Runtime::RetireThread(ThreadState* state) {
  Runtime& rt = Get();
  state->remote.DeliverAll();
  rt.GiveBatches(state->remote.TakeSpares());
  state->cache.Flush(NowMs());
  {
    MutexLock lock(&rt.registry_mu_);
    rt.Unregister(state);
  }
  delete state;
}

void Runtime::Unregister(ThreadState* state) {
  for (CounterField f :
       {&ThreadCounters::live_bytes, &ThreadCounters::in_arena_bytes,
        &ThreadCounters::large_bytes, &ThreadCounters::arenas_created,
        &ThreadCounters::arenas_destroyed, &ThreadCounters::resets,
        &ThreadCounters::large_allocations, &ThreadCounters::retained_bytes}) {
    (retired_.*f)
        .fetch_add((state->counters.*f).load(std::memory_order_relaxed),
                   std::memory_order_relaxed);
  }
  retired_footprint_.Absorb(state->footprint);
  if (RetainAccount* account = state->retain) {
    // A new generation with full credit: blocks the leaving thread kept
    // give nothing back to it (or to the account's next thread) later.
    account->Renew();
    account->next_free = free_accounts_;
    free_accounts_ = account;
    state->retain = nullptr;
  }
  if (state->prev != nullptr) state->prev->next = state->next;
  if (state->next != nullptr) state->next->prev = state->prev;
  if (threads_ == state) threads_ = state->next;
  state->prev = state->next = nullptr;
  --thread_count_;
}

RemoteInbox* Runtime::NewInbox() {
  MutexLock lock(&registry_mu_);
  if (free_inboxes_ == nullptr) {
    auto* chunk = new (std::nothrow) InboxChunk;
    if (chunk == nullptr) return nullptr;
    chunk->next = inbox_chunks_;
    inbox_chunks_ = chunk;
    for (RemoteInbox& inbox : chunk->inboxes) {
      inbox.next_free = free_inboxes_;
      free_inboxes_ = &inbox;
    }
  }
  RemoteInbox* inbox = free_inboxes_;
  free_inboxes_ = inbox->next_free;
  inbox->next_free = nullptr;
  return inbox;
}

void Runtime::FreeInbox(RemoteInbox* inbox) {
  ARENA_DCHECK(inbox->Empty(),
               "arena: a remote-free inbox recycled with chunks in it");
  // The next arena may batch (a stale delivery reads only the generation).
  inbox->epoch.fetch_and(~RemoteInbox::kDirect, std::memory_order_relaxed);
  MutexLock lock(&registry_mu_);
  inbox->next_free = free_inboxes_;
  free_inboxes_ = inbox;
}

RemoteBatch* Runtime::TakeBatches(std::uint32_t want, std::uint32_t* got) {
  RemoteBatch* list = nullptr;
  std::uint32_t n = 0;
  {
    MutexLock lock(&registry_mu_);
    while (n < want && free_batches_ != nullptr) {
      RemoteBatch* batch = free_batches_;
      free_batches_ = batch->next;
      batch->next = list;
      list = batch;
      ++n;
    }
    free_batch_count_ -= n;
    if (free_batch_count_ < free_batches_low_) free_batches_low_ = free_batch_count_;
  }
  // New ones outside the lock.
  for (; n < want; ++n) {
    auto* batch = new (std::nothrow) RemoteBatch;
    if (batch == nullptr) break;
    batches_alive_.fetch_add(1, std::memory_order_relaxed);
    batch->next = list;
    list = batch;
  }
  if (got != nullptr) *got = n;
  return list;
}

void Runtime::GiveBatches(RemoteBatch* list) {
  if (list == nullptr) return;
  RemoteBatch* last = list;
  std::size_t n = 1;
  for (; last->next != nullptr; last = last->next) ++n;
  MutexLock lock(&registry_mu_);
  last->next = free_batches_;
  free_batches_ = list;
  free_batch_count_ += n;
}

BlockHeader* Runtime::TakeBlockSlow(ThreadState* local) {
  auto take = [this, local]() -> BlockHeader* {
    if (local != nullptr) return local->cache.Get();
    BlockHeader* batch = nullptr;
    std::size_t n = depot_.Acquire(&batch);
    if (n == 0) return nullptr;
    BlockHeader* block = batch;
    BlockHeader* rest = block->next.load(std::memory_order_relaxed);
    block->next.store(nullptr, std::memory_order_relaxed);
    if (rest != nullptr) depot_.Release(rest, n - 1, NowMs());
    return block;
  };
  BlockHeader* block = take();
  // Out of memory (or at max_total_bytes) while cached large mappings hold
  // memory: give them back and try once more.
  if (block == nullptr &&
      large_cache_.Release(std::numeric_limits<std::int64_t>::max()) != 0) {
    block = take();
  }
  return block;
}

BlockHeader* Runtime::MapLarge(std::size_t bytes, std::size_t alignment,
                              std::size_t most) {
  if (bytes > (std::size_t{1} << 46)) return nullptr;
  const std::size_t need = kBlockHeaderSize + alignment + bytes;
  const std::size_t size = LargeMappingSize(need, most);
  if (size == 0) return nullptr;
  const std::size_t cached_most = std::min(2 * size, most);
  if (BlockHeader* block = large_cache_.Take(need, cached_most)) return block;
  void* p = source_->Map(size, config_.block_size);
  if (p == nullptr) {
    // Out of memory (or at max_total_bytes): cached mappings of other sizes
    // and free depot blocks are memory too. Give them back and retry once.
    const std::size_t freed =
        large_cache_.Release(std::numeric_limits<std::int64_t>::max()) +
        depot_.Trim();
    if (freed == 0) return nullptr;
    p = source_->Map(size, config_.block_size);
    if (p == nullptr) return nullptr;
  }
  auto* block = ::new (p) BlockHeader();
  block->size = size;
  block->kind = BlockKind::kLarge;
  return block;
}

void Runtime::UnmapLarge(BlockHeader* block) {
  const std::size_t size = block->size;
  UnpoisonMemory(block, size);
  if (!large_cache_.Put(block, NowMs())) source_->Unmap(block, size);
}

void Runtime::ForkPrepareImpl() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  registry_mu_.Lock();
  large_cache_.LockForFork();
  depot_.LockForFork();
  source_->HoldForFork();
}

void Runtime::ForkAfterInParentImpl() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  source_->ReleaseAfterForkParent();
  depot_.UnlockAfterFork();
  large_cache_.UnlockAfterFork();
  registry_mu_.Unlock();
}

void Runtime::ForkAfterInChildImpl() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // Only the forking thread exists here. What the others were doing never
  // finishes: their depot pops stay "in flight", their caches are gone (the
  // blocks stay mapped, unreachable) and no release thread runs.
  source_->ReleaseAfterForkChild();
  depot_.ResetAfterForkInChild();
  release_thread_running_.store(false, std::memory_order_relaxed);
  ThreadState* self = tls_thread_state;
  // A thread that was delivering a remote-free batch never ends its
  // delivery here: no delivery is in flight (the batch, delivered or not,
  // stays as it is; its threads' other batches are never delivered, and
  // their memory comes back at the arenas' Reset).
  for (InboxChunk* c = inbox_chunks_; c != nullptr; c = c->next) {
    for (RemoteInbox& inbox : c->inboxes) {
      inbox.delivering.store(0, std::memory_order_relaxed);
    }
  }
  for (ThreadState* t = threads_; t != nullptr;) {
    ThreadState* next = t->next;
    if (t != self) {
      Unregister(t);
      t->next = orphans_;
      orphans_ = t;
    }
    t = next;
  }
  depot_.UnlockAfterFork();
  large_cache_.UnlockAfterFork();
  registry_mu_.Unlock();
}

namespace {
// pthread_atfork: the child must not inherit a lock held by a thread that
// does not exist in it. Locks are held across fork on purpose: no analysis.
void ForkPrepare() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  StartMutex().Lock();
  if (Runtime* rt = Runtime::GetIfStarted()) rt->ForkPrepareImpl();
}
void ForkParent() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (Runtime* rt = Runtime::GetIfStarted()) rt->ForkAfterInParentImpl();
  StartMutex().Unlock();
}
void ForkChild() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (Runtime* rt = Runtime::GetIfStarted()) rt->ForkAfterInChildImpl();
  StartMutex().Unlock();
}
}  // namespace

}  // namespace internal
}  // namespace arena
