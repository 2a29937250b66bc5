#include "engine/redis/reply_reader.hpp"

#include <hiredis/hiredis.h>

#include <memory>
#include <new>

namespace herald::redis {

namespace {

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};

// hiredis's read stack has 9 levels (it fails deeper replies), so the recursion is bounded.
Reply convert(const redisReply& r) {
  Reply out;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::string;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::status;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::error;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::integer;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::array;
      out.elements.reserve(r.elements);
      for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(convert(*r.element[i]));
      break;
    default:
      out.type = Reply::Type::nil;
  }
  return out;
}

}  // namespace

ReplyReader::ReplyReader() : reader_(redisReaderCreate()) {
  if (!reader_) throw std::bad_alloc();
  // hiredis's default reply functions, but arrays pass through create_array first. The reader
  // hands its privdata to every task, which is how create_array finds this object.
  functions_ = new redisReplyObjectFunctions(*reader_->fn);
  hiredis_create_array_ = functions_->createArray;
  functions_->createArray = &ReplyReader::create_array;
  reader_->fn = functions_;
  reader_->privdata = this;
}

ReplyReader::~ReplyReader() {
  redisReaderFree(reader_);  // frees replies through functions_, so it goes first
  delete functions_;
}

void* ReplyReader::create_array(const redisReadTask* task, int elements) {
  auto* self = static_cast<ReplyReader*>(task->privdata);
  if (elements > kMaxArrayElements) {
    self->refused_elements_ = elements;
    return nullptr;  // hiredis then fails the stream (as out of memory; error() says why)
  }
  return self->hiredis_create_array_(task, elements);
}

bool ReplyReader::feed(const char* data, std::size_t n) { return redisReaderFeed(reader_, data, n) == REDIS_OK; }

ReplyReader::Next ReplyReader::next(Reply& out) {
  void* raw = nullptr;
  if (redisReaderGetReply(reader_, &raw) != REDIS_OK) return Next::error;
  if (!raw) return Next::need_more;
  std::unique_ptr<redisReply, ReplyDeleter> reply(static_cast<redisReply*>(raw));
  out = convert(*reply);
  return Next::reply;
}

std::string ReplyReader::error() const {
  if (refused_elements_ >= 0)
    return "array of " + std::to_string(refused_elements_) + " elements is over the limit of " +
           std::to_string(kMaxArrayElements);
  return reader_->errstr;
}

bool is_message_push(const Reply& r) {
  if (r.type != Reply::Type::array || r.elements.size() != 3 || r.elements[0].type != Reply::Type::string)
    return false;
  auto& kind = r.elements[0].str;
  return kind == "message" || kind == "smessage";
}

}  // namespace herald::redis
