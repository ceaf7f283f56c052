#include "common/listen.h"

#include <fmt/format.h>

#include <boost/asio/ip/address.hpp>

#include <charconv>

#include "common/json.h"

namespace pushhub {
std::string ListenAddress::toString() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

std::expected<ListenAddress, std::string> parseListenAddress(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return std::unexpected(fmt::format("{} is not HOST:PORT ({})", jsonQuoted(text), why));
  };
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return bad("missing ']' after an IPv6 address");
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') return bad("missing :PORT");
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("missing :PORT");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return bad("write IPv6 addresses as [ADDR]:PORT");
  }
  if (host.empty()) return bad("missing host; use 0.0.0.0 for every interface");
  unsigned long port_number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() ||
      port_number > 65535) {
    return bad("the port must be a number from 0 to 65535");
  }
  std::string address(host);
  if (address == "localhost") address = "127.0.0.1";
  boost::system::error_code parse_error;
  boost::asio::ip::make_address(address, parse_error);
  if (parse_error) return bad("the host must be an IP address or localhost");
  return ListenAddress{address, static_cast<uint16_t>(port_number)};
}

std::expected<Listening, std::string> listenOnEach(
    const ListenAddress& address, std::span<boost::asio::io_context* const> contexts) {
  using boost::asio::ip::tcp;
  boost::system::error_code ec;
  const auto fail = [&](uint16_t port) {
    return std::unexpected(fmt::format("cannot listen on {}: {}",
                                       ListenAddress{address.host, port}.toString(), ec.message()));
  };
  const auto ip = boost::asio::ip::make_address(address.host, ec);
  if (ec) return fail(address.port);
  Listening listening;
  listening.port = address.port;
  if (contexts.empty()) return listening;
  if (listening.port != 0) {
    tcp::acceptor probe(*contexts.front());
    probe.open(ip.is_v6() ? tcp::v6() : tcp::v4(), ec);
    if (!ec) probe.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) probe.bind(tcp::endpoint(ip, listening.port), ec);
    if (ec) return fail(listening.port);
  }
  for (auto* context : contexts) {
    // With port 0 the first bind picks the port and the others join it.
    const tcp::endpoint endpoint(ip, listening.port);
    tcp::acceptor& acceptor = listening.acceptors.emplace_back(*context);
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) {
      using reuse_port = boost::asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
      acceptor.set_option(reuse_port(true), ec);
    }
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(boost::asio::socket_base::max_listen_connections, ec);
    if (ec) return fail(listening.port);
    listening.port = acceptor.local_endpoint().port();
  }
  return listening;
}

}  // namespace pushhub
