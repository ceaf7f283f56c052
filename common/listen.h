#pragma once

// Listening sockets: addresses as users write them, and one SO_REUSEPORT acceptor per event loop
// so the kernel spreads connections over the loops (the API server, pushhub-sim).

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pushhub {

struct ListenAddress {
  std::string host;              // an IPv4 or IPv6 literal
  uint16_t port = 0;             // 0: any free port (the server logs the one it got)
  std::string toString() const;  // "127.0.0.1:7070", "[::1]:7070"
};

// "HOST:PORT" or "[IPV6]:PORT"; HOST is an IP literal or "localhost" (taken as 127.0.0.1).
std::expected<ListenAddress, std::string> parseListenAddress(std::string_view text);

struct Listening {
  std::vector<boost::asio::ip::tcp::acceptor> acceptors;  // one per context, in order
  uint16_t port = 0;                                      // the port they share
};

// One listening acceptor per context on the same address (SO_REUSEPORT); port 0 picks a free
// port. A port someone else listens on is refused: a probe bound without SO_REUSEPORT checks,
// since SO_REUSEPORT would otherwise let this process join another's group and split its traffic.
std::expected<Listening, std::string> listenOnEach(
    const ListenAddress& address, std::span<boost::asio::io_context* const> contexts);

}  // namespace pushhub
