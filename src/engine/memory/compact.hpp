// Compact storage for the memory engine, where a connected client's idle cost is decided:
// - LazyQueue: a FIFO that costs one pointer while empty and one allocation while not (a
//   std::deque allocates ~600 bytes in three blocks even for one element);
// - PackedEvent: a status event as one reference-counted allocation with its strings back to
//   back (~130 bytes for a typical event instead of ~370 as a shared StatusEvent).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <span>
#include <string_view>
#include <utility>

#include "engine/engine.hpp"

namespace herald::engine {

// Elements live contiguously in one heap block: [head, head + n). pop_front only advances head;
// a push that finds no room at the end moves the live part to the front, or doubles the block.
template <class T>
class LazyQueue {
 public:
  LazyQueue() = default;
  LazyQueue(const LazyQueue&) = delete;
  LazyQueue& operator=(const LazyQueue&) = delete;
  LazyQueue(LazyQueue&& o) noexcept : b_(std::exchange(o.b_, nullptr)) {}
  LazyQueue& operator=(LazyQueue&& o) noexcept {
    if (this != &o) {
      clear();
      b_ = std::exchange(o.b_, nullptr);
    }
    return *this;
  }
  ~LazyQueue() { clear(); }

  bool empty() const { return !b_; }
  std::size_t size() const { return b_ ? b_->n : 0; }
  T& front() { return b_->at(0); }
  const T& back() const { return b_->at(b_->n - 1); }
  std::span<const T> items() const { return b_ ? std::span<const T>(&b_->at(0), b_->n) : std::span<const T>(); }

  template <class... A>
  void emplace_back(A&&... a) {
    if (!b_) b_ = Block::make(kFirst);
    else if (b_->head + b_->n == b_->cap) make_room();
    new (b_->slot(b_->head + b_->n)) T(std::forward<A>(a)...);
    ++b_->n;
  }
  void pop_front() {
    b_->at(0).~T();
    ++b_->head;
    if (--b_->n == 0) clear();
  }
  void clear() {
    if (!b_) return;
    for (std::size_t i = 0; i < b_->n; ++i) b_->at(i).~T();
    ::operator delete(b_);
    b_ = nullptr;
  }
  template <class Pred>
  std::size_t erase_if(Pred&& p) {
    if (!b_) return 0;
    T* first = &b_->at(0);
    T* last = first + b_->n;
    T* keep = std::remove_if(first, last, std::forward<Pred>(p));
    std::size_t gone = static_cast<std::size_t>(last - keep);
    for (T* x = keep; x != last; ++x) x->~T();
    b_->n -= gone;
    if (b_->n == 0) clear();
    return gone;
  }

 private:
  static constexpr std::size_t kFirst = 4;
  struct Block {
    std::size_t cap, head, n;
    void* slot(std::size_t i) { return reinterpret_cast<T*>(this + 1) + i; }
    T& at(std::size_t i) { return reinterpret_cast<T*>(this + 1)[head + i]; }
    const T& at(std::size_t i) const { return reinterpret_cast<const T*>(this + 1)[head + i]; }
    static Block* make(std::size_t cap) {
      static_assert(alignof(T) <= alignof(std::max_align_t) && sizeof(Block) % alignof(T) == 0);
      auto* b = static_cast<Block*>(::operator new(sizeof(Block) + cap * sizeof(T)));
      b->cap = cap;
      b->head = b->n = 0;
      return b;
    }
  };
  // The end is full: reuse the space freed at the front if that leaves room to grow, else double.
  void make_room() {
    auto n = b_->n;
    auto cap = n * 2 <= b_->cap ? b_->cap : b_->cap * 2;
    Block* to = cap == b_->cap ? b_ : Block::make(cap);
    for (std::size_t i = 0; i < n; ++i) {
      T& from = b_->at(i);
      new (to->slot(i)) T(std::move(from));
      from.~T();
    }
    if (to != b_) ::operator delete(b_);
    to->head = 0;
    to->n = n;
    b_ = to;
  }

  Block* b_ = nullptr;
};

class PackedEvent {
 public:
  PackedEvent() = default;
  explicit PackedEvent(const StatusEvent& ev);
  PackedEvent(const PackedEvent& o) : p_(o.p_) {
    if (p_) p_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  PackedEvent(PackedEvent&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  PackedEvent& operator=(PackedEvent o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~PackedEvent();

  bool empty() const { return !p_; }
  std::int64_t ts_ms() const { return p_->ts_ms; }
  std::string_view client_id() const { return field(kClient); }
  StatusEvent unpack() const;

 private:
  enum Field { kId, kClient, kInstance, kSession, kRemote, kReason, kPrevious, kFields };
  struct Rep {
    std::atomic<std::uint32_t> refs{1};
    EventType type;
    std::int64_t ts_ms;
    std::int64_t offline_ms;
    std::uint32_t end[kFields];  // end offset of each string in the text after the Rep
    const char* text() const { return reinterpret_cast<const char*>(this + 1); }
  };
  std::string_view field(Field f) const {
    auto begin = f == 0 ? 0 : p_->end[f - 1];
    return {p_->text() + begin, p_->end[f] - begin};
  }
  Rep* p_ = nullptr;
};

// A client's status events, capped: the newest inline, older ones in a LazyQueue, so a client
// with one event (most of them) costs no allocation beyond the event itself.
class EventLog {
 public:
  bool empty() const { return newest_.empty(); }
  std::size_t size() const { return newest_.empty() ? 0 : older_.size() + 1; }
  const PackedEvent& newest() const { return newest_; }
  void push(PackedEvent ev, std::size_t max) {
    if (!newest_.empty()) older_.emplace_back(std::move(newest_));
    newest_ = std::move(ev);
    while (size() > max) {
      if (older_.empty()) newest_ = PackedEvent();
      else older_.pop_front();
    }
  }
  // Newest first, at most `limit`.
  template <class F>
  void newest_first(std::size_t limit, F&& f) const {
    if (newest_.empty() || limit == 0) return;
    f(newest_);
    auto items = older_.items();
    for (auto e = items.rbegin(); e != items.rend() && --limit > 0; ++e) f(*e);
  }

 private:
  PackedEvent newest_;
  LazyQueue<PackedEvent> older_;
};

}  // namespace herald::engine
