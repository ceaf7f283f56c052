#include "hub/notification_store.h"

#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <memory>
#include <random>

#include "storage/keys.h"

namespace pushhub::hub {

namespace {

using storage::ColumnFamily;

std::string key(char kind, std::string_view hub, std::string_view rest) {
  std::string k;
  k.reserve(2 + hub.size() + rest.size());
  k.push_back(kind);
  k.append(hub);
  k.push_back('\0');
  k.append(rest);
  return k;
}

std::string checkpointPrefix(std::string_view hub, std::string_view id) {
  std::string k = key('c', hub, id);
  k.push_back('\0');
  return k;
}

std::string scheduleKey(UnixMillis due, std::string_view hub, std::string_view id) {
  std::string k;
  const auto v = static_cast<uint64_t>(due);
  storage::appendBigEndian32(k, static_cast<uint32_t>(v >> 32));
  storage::appendBigEndian32(k, static_cast<uint32_t>(v));
  k.append(hub);
  k.push_back('\0');
  k.append(id);
  return k;
}

// "hub \0 id" after a key's prefix of `skip` bytes.
std::pair<std::string, std::string> hubAndId(std::string_view k, size_t skip) {
  k.remove_prefix(skip);
  const size_t zero = k.find('\0');
  if (zero == std::string_view::npos) return {std::string(k), {}};
  return {std::string(k.substr(0, zero)), std::string(k.substr(zero + 1))};
}

std::string failed(std::string_view doing, const rocksdb::Status& status) {
  return fmt::format("{}: {}", doing, status.ToString());
}

}  // namespace

std::string newNotificationId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

std::expected<std::optional<std::string>, std::string> NotificationStore::get(
    ColumnFamily cf, const std::string& k) const {
  std::string value;
  const auto s = database_.db().Get(rocksdb::ReadOptions(), database_.handle(cf), k, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return std::unexpected(failed("reading a notification", s));
  return std::optional<std::string>(std::move(value));
}

std::expected<NotificationStore::Accepted, std::string> NotificationStore::accept(Notification n) {
  std::unique_lock lock(mutex_, std::defer_lock);
  const std::string idempotency =
      n.idempotency_key.empty() ? std::string() : key('k', n.hub, n.idempotency_key);
  if (!idempotency.empty()) {
    lock.lock();
    auto seen = get(ColumnFamily::kNotifications, idempotency);
    if (!seen) return std::unexpected(seen.error());
    if (*seen) {
      auto first = notification(n.hub, **seen);
      if (!first) return std::unexpected(first.error());
      if (*first) return Accepted{std::move(**first), true};
      // The key outlived its notification (should not happen): accept anew.
    }
  }
  auto* cf = database_.handle(ColumnFamily::kNotifications);
  rocksdb::WriteBatch batch;
  batch.Put(cf, key('n', n.hub, n.id), encodeNotification(n));
  NotificationStatus status;
  status.state =
      n.scheduled_for != 0 ? NotificationState::kScheduled : NotificationState::kEnqueued;
  batch.Put(cf, key('s', n.hub, n.id), encodeStatus(status));
  if (!idempotency.empty()) batch.Put(cf, idempotency, n.id);
  if (n.scheduled_for != 0) {
    batch.Put(database_.handle(ColumnFamily::kSchedule), scheduleKey(n.scheduled_for, n.hub, n.id),
              "");
  } else {
    batch.Put(cf, key('a', n.hub, n.id), "");
  }
  const auto s = database_.write(batch);
  if (!s.ok()) return std::unexpected(failed("storing a notification", s));
  return Accepted{std::move(n), false};
}

template <class T, class Decode>
std::expected<std::optional<T>, std::string> NotificationStore::record(char kind,
                                                                       std::string_view hub,
                                                                       std::string_view id,
                                                                       Decode decode) const {
  auto bytes = get(ColumnFamily::kNotifications, key(kind, hub, id));
  if (!bytes) return std::unexpected(bytes.error());
  if (!*bytes) return std::optional<T>();
  auto decoded = decode(**bytes);
  if (!decoded) return std::unexpected(fmt::format("notification {}: {}", id, decoded.error()));
  return std::optional<T>(std::move(*decoded));
}

std::expected<std::optional<Notification>, std::string> NotificationStore::notification(
    std::string_view hub, std::string_view id) const {
  return record<Notification>('n', hub, id, decodeNotification);
}

std::expected<std::optional<NotificationStatus>, std::string> NotificationStore::status(
    std::string_view hub, std::string_view id) const {
  return record<NotificationStatus>('s', hub, id, decodeStatus);
}

std::expected<void, std::string> NotificationStore::setStatus(std::string_view hub,
                                                              std::string_view id,
                                                              const NotificationStatus& status) {
  const auto s =
      database_.db().Put(database_.writeOptions(), database_.handle(ColumnFamily::kNotifications),
                         key('s', hub, id), encodeStatus(status));
  if (!s.ok()) return std::unexpected(failed("storing a notification's state", s));
  return {};
}

std::expected<std::vector<std::pair<std::string, std::string>>, std::string>
NotificationStore::active() const {
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(database_.db().NewIterator(
      rocksdb::ReadOptions(), database_.handle(ColumnFamily::kNotifications)));
  for (it->Seek("a"); it->Valid() && it->key().starts_with("a"); it->Next()) {
    out.push_back(hubAndId(it->key().ToStringView(), 1));
  }
  if (!it->status().ok()) return std::unexpected(failed("listing notifications", it->status()));
  return out;
}

std::expected<void, std::string> NotificationStore::saveCheckpoints(
    const std::vector<SlotCheckpoint>& checkpoints) {
  if (checkpoints.empty()) return {};
  auto* cf = database_.handle(ColumnFamily::kNotifications);
  rocksdb::WriteBatch batch;
  for (const auto& c : checkpoints) {
    std::string k = checkpointPrefix(c.hub, c.id);
    storage::appendBigEndian32(k, c.slot);
    batch.Put(cf, k, encodeCheckpoint(c.checkpoint));
  }
  const auto s = database_.write(batch);
  if (!s.ok()) return std::unexpected(failed("storing progress", s));
  return {};
}

std::expected<std::map<uint32_t, Checkpoint>, std::string> NotificationStore::checkpoints(
    std::string_view hub, std::string_view id) const {
  std::map<uint32_t, Checkpoint> out;
  const std::string prefix = checkpointPrefix(hub, id);
  std::unique_ptr<rocksdb::Iterator> it(database_.db().NewIterator(
      rocksdb::ReadOptions(), database_.handle(ColumnFamily::kNotifications)));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    const std::string_view k = it->key().ToStringView();
    if (k.size() != prefix.size() + 4) continue;
    auto decoded = decodeCheckpoint(it->value().ToStringView());
    if (!decoded) return std::unexpected(fmt::format("progress of {}: {}", id, decoded.error()));
    out[storage::readBigEndian32(k.substr(prefix.size()))] = std::move(*decoded);
  }
  if (!it->status().ok()) return std::unexpected(failed("reading progress", it->status()));
  return out;
}

std::expected<void, std::string> NotificationStore::finish(std::string_view hub,
                                                           std::string_view id,
                                                           const NotificationStatus& status) {
  auto* cf = database_.handle(ColumnFamily::kNotifications);
  rocksdb::WriteBatch batch;
  batch.Put(cf, key('s', hub, id), encodeStatus(status));
  batch.Delete(cf, key('a', hub, id));
  const std::string prefix = checkpointPrefix(hub, id);
  std::string end = prefix;
  end.back() = '\1';
  batch.DeleteRange(cf, prefix, end);
  const auto s = database_.write(batch);
  if (!s.ok()) return std::unexpected(failed("finishing a notification", s));
  return {};
}

std::expected<std::vector<std::pair<std::string, std::string>>, std::string> NotificationStore::due(
    UnixMillis now, size_t limit) const {
  std::vector<std::pair<std::string, std::string>> out;
  const std::string end = scheduleKey(now + 1, "", "");
  std::unique_ptr<rocksdb::Iterator> it(database_.db().NewIterator(
      rocksdb::ReadOptions(), database_.handle(ColumnFamily::kSchedule)));
  for (it->SeekToFirst(); it->Valid() && out.size() < limit; it->Next()) {
    if (it->key().compare(end) >= 0) break;
    out.push_back(hubAndId(it->key().ToStringView(), 8));
  }
  if (!it->status().ok()) return std::unexpected(failed("reading the schedule", it->status()));
  return out;
}

std::expected<std::optional<UnixMillis>, std::string> NotificationStore::nextDue() const {
  std::unique_ptr<rocksdb::Iterator> it(database_.db().NewIterator(
      rocksdb::ReadOptions(), database_.handle(ColumnFamily::kSchedule)));
  it->SeekToFirst();
  if (!it->status().ok()) return std::unexpected(failed("reading the schedule", it->status()));
  if (!it->Valid() || it->key().size() < 8) return std::optional<UnixMillis>();
  const std::string_view k = it->key().ToStringView();
  const uint64_t due =
      (uint64_t{storage::readBigEndian32(k)} << 32) | storage::readBigEndian32(k.substr(4));
  return std::optional<UnixMillis>(static_cast<UnixMillis>(due));
}

std::expected<std::optional<std::string>, std::string> NotificationStore::scheduledKey(
    std::string_view hub, std::string_view id) const {
  auto n = notification(hub, id);
  if (!n) return std::unexpected(n.error());
  if (!*n || (*n)->scheduled_for == 0) return std::optional<std::string>();
  std::string scheduled = scheduleKey((*n)->scheduled_for, hub, id);
  auto present = get(ColumnFamily::kSchedule, scheduled);
  if (!present) return std::unexpected(present.error());
  if (!*present) return std::optional<std::string>();
  return std::optional<std::string>(std::move(scheduled));
}

std::expected<bool, std::string> NotificationStore::activate(std::string_view hub,
                                                             std::string_view id) {
  std::lock_guard lock(mutex_);
  auto scheduled = scheduledKey(hub, id);
  if (!scheduled) return std::unexpected(scheduled.error());
  if (!*scheduled) return false;
  rocksdb::WriteBatch batch;
  batch.Delete(database_.handle(ColumnFamily::kSchedule), **scheduled);
  auto* cf = database_.handle(ColumnFamily::kNotifications);
  batch.Put(cf, key('a', hub, id), "");
  batch.Put(cf, key('s', hub, id), encodeStatus(NotificationStatus{}));
  const auto s = database_.write(batch);
  if (!s.ok()) return std::unexpected(failed("starting a scheduled notification", s));
  return true;
}

std::expected<bool, std::string> NotificationStore::cancel(std::string_view hub,
                                                           std::string_view id) {
  std::lock_guard lock(mutex_);
  auto scheduled = scheduledKey(hub, id);
  if (!scheduled) return std::unexpected(scheduled.error());
  if (!*scheduled) return false;
  rocksdb::WriteBatch batch;
  batch.Delete(database_.handle(ColumnFamily::kSchedule), **scheduled);
  NotificationStatus status;
  status.state = NotificationState::kCanceled;
  batch.Put(database_.handle(ColumnFamily::kNotifications), key('s', hub, id),
            encodeStatus(status));
  const auto s = database_.write(batch);
  if (!s.ok()) return std::unexpected(failed("cancelling a notification", s));
  return true;
}

}  // namespace pushhub::hub
