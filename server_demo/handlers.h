// The demo's routes. Every byte a handler allocates for a request (parsed
// pieces, containers, the serialized response) comes from `memory`: the
// request's arena, or the global heap in malloc mode. Same code either way.
//
//   GET  /hello          a small text response
//   POST /echo           the request body
//   GET  /json?items=N   N records built from pmr strings and vectors; 400
//                        past json_max_items, 503 (before any work) when
//                        JsonCostBound(N) exceeds the request's memory left
//   POST /wordcount      word counts of the body as JSON, counted in parallel
//                        (oneTBB; see wordcount.h); ?chunks=N (1..256) sets
//                        the split. In arena mode the work's memory is a
//                        SharedArena capped at the request's memory left
//                        (each thread that takes part holds at least one
//                        block of it); past the cap, 503
//   GET  /stats          {"server": {...}, "allocator": {...}}
//   GET  /metrics        the same, Prometheus text
//   GET  /healthz        "ok"
// HEAD is answered like GET, without the body.
//
// Thread-safety: HandleRequest may run on many threads at once; the
// ServerView it calls must be thread-safe.
#ifndef SERVER_DEMO_HANDLERS_H_
#define SERVER_DEMO_HANDLERS_H_

#include <cstdint>
#include <memory_resource>
#include <string>

#include "server_demo/http.h"
#include "server_demo/server_config.h"

namespace server_demo {

class ServerView {
 public:
  virtual ~ServerView() = default;
  virtual std::string StatsJson() = 0;
  virtual std::string MetricsText() = 0;
};

struct HandlerContext {
  const ServerConfig* config;
  ServerView* view;
  // Bytes the request may still allocate from `memory` (its share of
  // request_memory_limit not used by parsing).
  std::size_t memory_left = SIZE_MAX;
};

// Appends the complete response for `request` to `wire`; returns its status.
int HandleRequest(const HttpRequest& request, std::pmr::memory_resource* memory,
                  const HandlerContext& context, std::pmr::string* wire);

// Builds the /json body for `items` records (exposed for tests and benches).
void BuildJsonItems(std::size_t items, std::pmr::memory_resource* memory,
                    std::pmr::string* out);

// An upper bound of the bytes that answering GET /json?items=N allocates
// (records, body, response), so that a request that cannot fit is refused
// before the work. Exact arithmetic on the sizes involved, not a measurement.
std::size_t JsonCostBound(std::size_t items);

}  // namespace server_demo

#endif  // SERVER_DEMO_HANDLERS_H_
