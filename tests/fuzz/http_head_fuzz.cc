// libFuzzer target for HTTP requests as pushhub's server reads them (api/http_server.*): the head
// check (exact limit, oversized fields), Beast's parser on what passes it, and the router on
// what parses — with pushhub's route patterns. Nothing crashes or throws; a complete head is
// never larger than the limit.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>

#include "api/http_server.h"

using namespace pushhub::api;
namespace asio = boost::asio;

namespace {

const Router& router() {
  static const Router r = [] {
    Router r;
    const auto ok = [](const HttpRequest&, const PathParams&) -> asio::awaitable<HttpResponse> {
      co_return textResponse("ok", "text/plain");
    };
    for (const char* pattern :
         {"/{hub}/installations/{id}", "/{hub}/messages", "/{hub}/messages/$batch",
          "/{hub}/messages/{id}", "/{hub}/registrations/{id}", "/{hub}/tags/{tag}/registrations",
          "/admin/hubs/{hub}"}) {
      r.addPattern(http::verb::get, pattern, ok);
      r.addPattern(http::verb::put, pattern, ok);
    }
    r.add(http::verb::get, "/healthz", [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
      co_return textResponse("ok", "text/plain");
    });
    return r;
  }();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view received(reinterpret_cast<const char*>(data), size);
  constexpr size_t kLimit = 4096;
  const RequestHead head = checkRequestHead(received, kLimit);
  if (head.state != RequestHead::State::kComplete) return 0;
  if (head.size > kLimit) std::abort();
  http::request_parser<http::string_body> parser;
  parser.header_limit(std::numeric_limits<std::uint32_t>::max());
  parser.body_limit(1 << 16);
  parser.eager(true);
  boost::system::error_code ec;
  parser.put(asio::buffer(received.data(), received.size()), ec);
  if (ec || !parser.is_header_done()) return 0;
  if (!parser.is_done()) return 0;
  HttpRequest request = parser.release();
  asio::io_context io;
  bool answered = false;
  asio::co_spawn(io, router().dispatch(request), [&](std::exception_ptr e, HttpResponse) {
    if (e) std::abort();
    answered = true;
  });
  io.run();
  if (!answered) std::abort();
  return 0;
}
