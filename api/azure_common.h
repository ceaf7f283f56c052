#pragma once

// Helpers shared by the Azure route modules (azure_api.cc, azure_registrations.cc).

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "api/http_server.h"
#include "storage/installation_store.h"

namespace pushhub::api::azure_detail {

namespace asio = boost::asio;

// Starts work that answers through a callback (on any thread) and resumes the coroutine on its
// own executor with the answer. A plain function returning the awaitable (not a coroutine
// itself: GCC 12 destroys a coroutine's by-value parameters twice when a lambda moves them).
template <class T>
asio::awaitable<T> awaitCallback(std::function<void(std::function<void(T)>)> start) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(T)>(
      [start = std::move(start)](auto handler) {
        auto executor = asio::get_associated_executor(handler);
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        start([shared, executor](T result) {
          asio::post(executor, [shared, result = std::move(result)]() mutable {
            std::move (*shared)(std::move(result));
          });
        });
      },
      asio::use_awaitable);
}

// A route handler calling `(object->*method)(request, params)`.
template <class Object, class Method>
PatternHandler bindRoute(Object* object, Method method) {
  return
      [object, method](const HttpRequest& r, const PathParams& p) -> asio::awaitable<HttpResponse> {
        co_return co_await (object->*method)(r, p);
      };
}

std::string queryOf(const HttpRequest& request);
// A query parameter's decoded value; nullopt when absent.
std::optional<std::string> queryParam(const HttpRequest& request, std::string_view name);
// A query flag as the docs (`?direct`) and the JS SDK (`direct=true`) write it: present is true.
bool hasQueryFlag(const HttpRequest& request, std::string_view name);
std::string pathOf(const HttpRequest& request);
HttpResponse withBody(http::status status, std::string body, std::string_view content_type);
// A new registration id in Azure's form.
std::string newRegistrationIdText();
// A storage failure as Azure answers it: 400, 404, 412 or 500.
HttpResponse storeError(const storage::StoreError& error);

}  // namespace pushhub::api::azure_detail
