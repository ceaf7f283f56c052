#include "bench/tool/http_call.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>

#include <fmt/format.h>

#include <stdexcept>

#include "bench/tool/http_load.h"
#include "connectors/http1/client.h"

namespace pushhub::bench {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

template <class Stream>
HttpReply exchange(Stream& stream, const HttpEndpoint& e, const std::string& request) {
  asio::write(stream, asio::buffer(request));
  std::string data;
  char chunk[16384];
  boost::system::error_code ec;
  size_t head_end = std::string::npos;
  std::optional<HttpHead> head;
  for (;;) {
    const size_t n = stream.read_some(asio::buffer(chunk), ec);
    data.append(chunk, n);
    if (!head) {
      head_end = data.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        std::string error;
        head = parseHttpHead(std::string_view(data).substr(0, head_end), error, true);
        if (!head) throw std::runtime_error(fmt::format("{}:{}: {}", e.host, e.port, error));
      }
    }
    if (head && data.size() >= head_end + 4 + head->body_length) break;
    if (ec) {
      throw std::runtime_error(
          fmt::format("{}:{}: the answer ended early: {}", e.host, e.port, ec.message()));
    }
  }
  HttpReply reply;
  reply.status = head->status;
  reply.headers = std::move(head->headers);
  reply.body = data.substr(head_end + 4, head->body_length);
  return reply;
}

}  // namespace

HttpReply httpCall(const HttpEndpoint& e, const std::string& method, const std::string& target,
                   const std::vector<std::pair<std::string, std::string>>& headers,
                   const std::string& body) {
  std::string request = fmt::format("{} {} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\n",
                                    method, target, e.host, e.port);
  for (const auto& [name, value] : headers) request += fmt::format("{}: {}\r\n", name, value);
  request += fmt::format("Content-Length: {}\r\n\r\n", body.size());
  request += body;
  asio::io_context io;
  tcp::socket socket(io);
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(e.host == "localhost" ? "127.0.0.1" : e.host, ec);
  if (ec) throw std::runtime_error(e.host + ": not an IP address");
  socket.connect(tcp::endpoint(address, e.port), ec);
  if (ec) {
    throw std::runtime_error(
        fmt::format("cannot connect to {}:{}: {}", e.host, e.port, ec.message()));
  }
  socket.set_option(tcp::no_delay(true));
  try {
    if (e.ca_file.empty()) return exchange(socket, e, request);
    asio::ssl::context tls(asio::ssl::context::tls_client);
    tls.load_verify_file(e.ca_file);
    tls.set_verify_mode(asio::ssl::verify_peer);
    asio::ssl::stream<tcp::socket&> stream(socket, tls);
    SSL_set_tlsext_host_name(stream.native_handle(), "localhost");
    stream.handshake(asio::ssl::stream_base::client);
    return exchange(stream, e, request);
  } catch (const boost::system::system_error& error) {
    throw std::runtime_error(fmt::format("{}:{}: {}", e.host, e.port, error.what()));
  }
}

std::pair<HttpEndpoint, std::string> splitUrl(const std::string& url, const std::string& ca_file) {
  auto parsed = connectors::http1::parseHttpUrl(url);
  if (!parsed) throw std::runtime_error(parsed.error());
  HttpEndpoint e{parsed->host, parsed->port, parsed->https ? ca_file : std::string()};
  return {std::move(e), std::move(parsed->target)};
}

}  // namespace pushhub::bench
