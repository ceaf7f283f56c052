#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace pushhub::testing {

struct HttpReply {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool keep_alive = false;
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// A blocking HTTP/1.1 client on one keep-alive connection to 127.0.0.1, for tests. Throws on
// network errors (boost::system::system_error). With `ca_file`, it speaks HTTPS and verifies the
// server's certificate for 127.0.0.1 against that CA.
class HttpClient {
 public:
  explicit HttpClient(uint16_t port, const std::string& ca_file = {});
  ~HttpClient();

  HttpReply request(const std::string& method, const std::string& target,
                    const std::string& body = {},
                    const std::vector<std::pair<std::string, std::string>>& headers = {});
  // Writes raw bytes and reads one response: for malformed or partial requests.
  HttpReply raw(const std::string& bytes);
  void sendRaw(const std::string& bytes);
  HttpReply readReply();
  // True once the server has closed the connection (reads EOF within `timeout_ms`).
  bool serverClosed(int timeout_ms = 2000);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pushhub::testing
