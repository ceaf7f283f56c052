#include "tests/support/http_client.h"

#include <poll.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cctype>
#include <optional>

namespace pushhub::testing {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

struct HttpClient::Impl {
  asio::io_context context;
  tcp::socket socket{context};
  std::optional<asio::ssl::context> tls_context;
  std::optional<asio::ssl::stream<tcp::socket&>> tls;
  boost::beast::flat_buffer buffer;

  // Runs `f` on the stream requests go through: the TLS layer or the socket.
  template <class F>
  decltype(auto) io(F&& f) {
    if (tls) return f(*tls);
    return f(socket);
  }
};

HttpClient::HttpClient(uint16_t port, const std::string& ca_file)
    : impl_(std::make_unique<Impl>()) {
  impl_->socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  if (ca_file.empty()) return;
  impl_->tls_context.emplace(asio::ssl::context::tls_client);
  impl_->tls_context->load_verify_file(ca_file);
  impl_->tls_context->set_verify_mode(asio::ssl::verify_peer);
  impl_->tls.emplace(impl_->socket, *impl_->tls_context);
  impl_->tls->set_verify_callback(asio::ssl::host_name_verification("127.0.0.1"));
  impl_->tls->handshake(asio::ssl::stream_base::client);
}

HttpClient::~HttpClient() = default;

HttpReply HttpClient::readReply() {
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  impl_->io([&](auto& stream) { http::read(stream, impl_->buffer, parser); });
  auto& response = parser.get();
  HttpReply reply;
  reply.status = response.result_int();
  for (const auto& field : response) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    reply.headers[name] = std::string(field.value());
  }
  reply.body = response.body();
  reply.keep_alive = response.keep_alive();
  return reply;
}

HttpReply HttpClient::request(const std::string& method, const std::string& target,
                              const std::string& body,
                              const std::vector<std::pair<std::string, std::string>>& headers) {
  http::request<http::string_body> request{http::string_to_verb(method), target, 11};
  request.set(http::field::host, "127.0.0.1");
  for (const auto& [name, value] : headers) request.set(name, value);
  request.body() = body;
  request.prepare_payload();
  impl_->io([&](auto& stream) { http::write(stream, request); });
  return readReply();
}

void HttpClient::sendRaw(const std::string& bytes) {
  impl_->io([&](auto& stream) { asio::write(stream, asio::buffer(bytes)); });
}

HttpReply HttpClient::raw(const std::string& bytes) {
  sendRaw(bytes);
  return readReply();
}

bool HttpClient::serverClosed(int timeout_ms) {
  pollfd pfd{impl_->socket.native_handle(), POLLIN, 0};
  if (poll(&pfd, 1, timeout_ms) <= 0) return false;
  char byte;
  boost::system::error_code ec;
  const size_t n =
      impl_->io([&](auto& stream) { return stream.read_some(asio::buffer(&byte, 1), ec); });
  return n == 0 && ec;
}

}  // namespace pushhub::testing
