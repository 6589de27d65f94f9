// examples/beast_server: an asynchronous HTTP/1.1 server on Boost.Asio and
// Boost.Beast whose per-request memory lives in an arena::Arena.
//
// One Session per connection. With ArenaMemory, the session owns one arena;
// each request's parser (header fields as http::basic_fields over
// arena::ArenaAllocator, the body), the response (fields and body) and the
// JSON built for it are allocated from it, and the arena is Reset after the
// response is written. The read buffer (beast::flat_buffer on the heap)
// stays outside the arena: it carries pipelined bytes from one request to
// the next, across Resets. StdMemory is the same server on std::allocator.
//
// Threads: the io_context may be run by several threads; a session's
// handlers run one at a time (each starts the next asynchronous operation),
// so its arena is used by one thread at a time and handed over through
// Asio's queue, which the arena's contract allows. Sessions live as long as
// their connection (shared_ptr held by the pending operation).
#ifndef EXAMPLES_BEAST_SERVER_SERVER_H_
#define EXAMPLES_BEAST_SERVER_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/numbers.h"
#include "arena/arena.h"
#include "examples/beast_server/json.h"

namespace beast_server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// Per-connection memory policies, owned by a Session and used only by its
// handlers (one thread at a time). ArenaMemory: one arena for the
// connection's life; allocator() hands out ArenaAllocators on it; Reset()
// frees everything allocated since the last Reset.
class ArenaMemory {
 public:
  using Allocator = arena::ArenaAllocator<char>;
  Allocator allocator() { return Allocator(arena_); }
  // REQUIRES: nothing allocated from allocator() is still alive.
  void Reset() { arena_.Reset(); }

 private:
  arena::Arena arena_;
};

// The same interface on std::allocator (the heap); Reset() does nothing.
class StdMemory {
 public:
  using Allocator = std::allocator<char>;
  Allocator allocator() { return {}; }
  void Reset() {}
};

// The answers of server_demo/handlers.cc for /hello and /json; any other
// path is 404. Fills `res` (status, Content-Type, body) for `req`.
template <class Request, class Response, class Alloc>
void Route(const Request& req, const Alloc& alloc, Response* res) {
  const std::string_view target(req.target().data(), req.target().size());
  const std::size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query =
      q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  const bool get = req.method() == http::verb::get || req.method() == http::verb::head;
  auto answer = [res](http::status status, const char* type, std::string_view body) {
    res->result(status);
    res->set(http::field::content_type, type);
    res->body().assign(body.data(), body.size());
  };
  if (path == "/hello") {
    if (!get) return answer(http::status::method_not_allowed, "text/plain", "use GET\n");
    return answer(http::status::ok, "text/plain", "Hello, world!\n");
  }
  if (path == "/json") {
    if (!get) return answer(http::status::method_not_allowed, "text/plain", "use GET\n");
    // server_demo's QueryParam: the first "items" pair; "items" alone is empty.
    std::string_view arg;
    for (std::size_t pos = 0; pos <= query.size();) {
      std::size_t amp = query.find('&', pos);
      if (amp == std::string_view::npos) amp = query.size();
      const std::string_view pair = query.substr(pos, amp - pos);
      const std::size_t eq = pair.find('=');
      if (pair.substr(0, eq) == "items") {
        arg = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
        break;
      }
      pos = amp + 1;
    }
    std::size_t items = 10;
    if (!arg.empty() && !absl::SimpleAtoi(absl::string_view(arg.data(), arg.size()), &items)) {
      return answer(http::status::bad_request, "text/plain",
                    "items must be a non-negative integer\n");
    }
    if (items > kJsonMaxItems) {
      BasicString<Alloc> msg(alloc);
      msg.append("items must be at most ");
      internal::AppendInt(&msg, static_cast<long long>(kJsonMaxItems));
      msg.append("\n");
      return answer(http::status::bad_request, "text/plain", msg);
    }
    res->result(http::status::ok);
    res->set(http::field::content_type, "application/json");
    BuildJsonItems(items, alloc, &res->body());
    return;
  }
  return answer(http::status::not_found, "text/plain", "no such route\n");
}

template <class Memory>
class Session : public std::enable_shared_from_this<Session<Memory>> {
 public:
  using Alloc = typename Memory::Allocator;
  using Fields = http::basic_fields<Alloc>;
  using Body = http::basic_string_body<char, std::char_traits<char>, Alloc>;
  using Parser = http::request_parser<Body, Alloc>;
  using Response = http::response<Body, Fields>;

  explicit Session(tcp::socket&& socket) : stream_(std::move(socket)) {}

  void Start() {
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&Session::Read, this->shared_from_this()));
  }

 private:
  void Read() {
    const Alloc alloc = memory_.allocator();
    // The parser's message: body and fields both on `alloc`.
    parser_.emplace(std::piecewise_construct, std::make_tuple(alloc),
                    std::make_tuple(alloc));
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRead, this->shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec) return Close(ec == http::error::end_of_stream);
    const auto& req = parser_->get();
    const Alloc alloc = memory_.allocator();
    response_.emplace(std::piecewise_construct, std::make_tuple(alloc),
                      std::make_tuple(alloc));
    Response& res = *response_;
    res.version(req.version());
    res.set(http::field::server, "arena-demo");
    Route(req, alloc, &res);
    res.content_length(res.body().size());
    // As server_demo: "Connection: close" whenever the connection closes
    // (Beast's keep_alive(false) omits it for HTTP/1.0), "keep-alive" for an
    // HTTP/1.0 client that asked for it.
    if (req.keep_alive()) {
      res.keep_alive(true);
    } else {
      res.set(http::field::connection, "close");
    }
    // HEAD: the headers GET would get, no body.
    if (req.method() == http::verb::head) res.body().clear();
    http::async_write(stream_, res,
                      beast::bind_front_handler(&Session::OnWrite, this->shared_from_this()));
  }

  void OnWrite(beast::error_code ec, std::size_t) {
    const bool keep_alive = !ec && response_->keep_alive();
    // Everything allocated for this request dies before the Reset.
    response_.reset();
    parser_.reset();
    memory_.Reset();
    if (!keep_alive) return Close(!ec);
    Read();
  }

  void Close(bool graceful) {
    beast::error_code ignored;
    if (graceful) stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;  // heap: outlives each request (pipelining)
  Memory memory_;              // declared before what it allocates
  std::optional<Parser> parser_;
  std::optional<Response> response_;
};

// Accepts connections and starts a Session<Memory> for each, on its own
// strand. Lives while an accept is pending (shared_ptr in the handler);
// stops when the io_context stops.
template <class Memory>
class Listener : public std::enable_shared_from_this<Listener<Memory>> {
 public:
  Listener(asio::io_context& ioc, tcp::acceptor&& acceptor)
      : ioc_(ioc), acceptor_(std::move(acceptor)) {}

  void Start() { Accept(); }

 private:
  void Accept() {
    acceptor_.async_accept(asio::make_strand(ioc_),
                           beast::bind_front_handler(&Listener::OnAccept,
                                                     this->shared_from_this()));
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<Session<Memory>>(std::move(socket))->Start();
    } else if (ec == asio::error::operation_aborted) {
      return;
    }
    Accept();
  }

  asio::io_context& ioc_;
  tcp::acceptor acceptor_;
};

}  // namespace beast_server

#endif  // EXAMPLES_BEAST_SERVER_SERVER_H_
