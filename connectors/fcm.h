#pragma once

// The FCM HTTP v1 client of one shard: POST /v1/projects/{project}/messages:send with the
// message aimed at one registration token, an OAuth access token from the credential's shared
// AccessTokenSource (fetched before the first send, refreshed once after a 401), classification
// by FcmError code, and PushClient's retries (Retry-After honoured; at least a minute for
// QUOTA_EXCEEDED).

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "connectors/oauth.h"

namespace pushhub::connectors {

struct FcmNotification {
  std::string device_token;  // the registration token
  // The FCM v1 `message` object without a target, e.g. {"data":{"k":"v"},"android":{…}} —
  // Azure's fcmv1 native format carries it as {"message":{…}}; give the inner object.
  std::string message_json;
  bool validate_only = false;
};

class FcmClient : public OAuthPushClient<FcmClient, FcmNotification> {
 public:
  struct Options {
    http2::ClientPool::Options pool;  // fcm.googleapis.com:443 (or the simulator)
    RetryOptions retry;
    std::string project_id;
  };

  FcmClient(boost::asio::io_context& io, std::shared_ptr<boost::asio::ssl::context> tls,
            Options options, std::shared_ptr<AccessTokenSource> tokens);

  // False when the pool's queue is full (call again after onSpace). A message whose payload is
  // over 4096 bytes, or that is not a JSON object, ends at once without a request.
  bool send(FcmNotification notification, std::chrono::steady_clock::time_point deadline,
            Callback done);

  // PushClient's hooks.
  http2::ClientRequest build(Pending& pending);
  Classification classify(const http2::ClientResponse& response) const;

 private:
  std::string path_;
};

}  // namespace pushhub::connectors
