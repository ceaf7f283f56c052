#pragma once

// The /metrics series every connection pool keeps (pushhub_connector_*), labelled per service
// and endpoint; pools of all shards with the same labels share them.

#include "common/metrics.h"

namespace pushhub::connectors {

struct PoolMetrics {
  Counter* requests = nullptr;
  Counter* connects = nullptr;
  Counter* connect_failures = nullptr;
  Counter* goaways = nullptr;
  Counter* queue_full = nullptr;
  Counter* unreachable = nullptr;
  Counter* resends = nullptr;
  Gauge* connections = nullptr;
  Gauge* queued = nullptr;

  // Nothing is counted without a registry.
  PoolMetrics(MetricsRegistry* registry, const MetricLabels& labels) {
    if (registry == nullptr) return;
    requests = &registry->counter("pushhub_connector_requests_total",
                                  "Requests sent to a push service", labels);
    connects = &registry->counter("pushhub_connector_connects_total",
                                  "Connections to a push service that became ready", labels);
    connect_failures = &registry->counter(
        "pushhub_connector_connect_failures_total",
        "Connections to a push service that failed before becoming ready", labels);
    goaways = &registry->counter("pushhub_connector_goaways_total",
                                 "Connections a push service closed with GOAWAY", labels);
    queue_full =
        &registry->counter("pushhub_connector_queue_full_total",
                           "Requests refused because a connection pool's queue was full", labels);
    unreachable = &registry->counter(
        "pushhub_connector_unreachable_total",
        "Requests ended at once because their endpoint's circuit breaker was open (its connects "
        "kept failing)",
        labels);
    resends = &registry->counter(
        "pushhub_connector_resends_total",
        "Requests sent again because the connection they were in flight on was lost: the push "
        "service may have received them twice",
        labels);
    connections = &registry->gauge("pushhub_connector_connections",
                                   "Open connections to push services", labels);
    queued = &registry->gauge("pushhub_connector_queued",
                              "Requests waiting in connection pools' queues for a stream or a "
                              "connection",
                              labels);
  }
  static void inc(Counter* c) {
    if (c != nullptr) c->inc();
  }
  static void add(Gauge* g, int64_t n) {
    if (g != nullptr) g->add(n);
  }
};

}  // namespace pushhub::connectors
