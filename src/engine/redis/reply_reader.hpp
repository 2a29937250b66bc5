// Replies out of a RESP byte stream: hiredis's reader, converted to Herald's Reply. Free of any
// I/O so the client (redis_client.cpp) and the resp_fuzz target run exactly the same code.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "engine/redis/redis_client.hpp"

// hiredis, kept out of this header.
struct redisReader;
struct redisReadTask;
struct redisReplyObjectFunctions;

namespace herald::redis {

class ReplyReader {
 public:
  // The most elements one array may announce. hiredis allocates an announced array at once, so
  // without a bound "*2000000000\r\n" (13 bytes from a broken or hostile server) would ask for
  // 16 GB. Herald's largest replies are pages of at most a few thousand stream entries.
  static constexpr int kMaxArrayElements = 1 << 20;

  ReplyReader();
  ~ReplyReader();
  ReplyReader(const ReplyReader&) = delete;
  ReplyReader& operator=(const ReplyReader&) = delete;

  // Appends bytes as they came from the server. False on a protocol error (see error()).
  bool feed(const char* data, std::size_t n);

  enum class Next { reply, need_more, error };
  // The next complete reply, if any. After `error` the stream is unusable: drop the connection.
  Next next(Reply& out);

  // Why feed() or next() failed.
  std::string error() const;

 private:
  static void* create_array(const ::redisReadTask* task, int elements);

  redisReader* reader_;
  ::redisReplyObjectFunctions* functions_;  // hiredis's own, with create_array in between
  void* (*hiredis_create_array_)(const ::redisReadTask*, int) = nullptr;
  long long refused_elements_ = -1;  // an array over kMaxArrayElements, when one was refused
};

// A pub/sub push of a message (["message"|"smessage", channel, payload]): those arrive unasked
// on a subscriber connection and answer no command.
bool is_message_push(const Reply& r);

}  // namespace herald::redis
