// The service API as plain functions (api::handle) on a Gateway with the memory engine: no
// sockets, the memory engine answers inline. Regression tests for what http_fuzz found.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <memory>
#include <string>

#include "api/service_api.hpp"
#include "core/gateway.hpp"
#include "core/loop.hpp"

namespace {

using namespace herald;

class ServiceApiTest : public ::testing::Test {
 protected:
  ServiceApiTest() {
    Config c;
    c.engine = "memory";
    c.threads = 1;
    gw_ = std::make_unique<Gateway>(c, "test-instance");
  }

  api::ApiResponse post(const std::string& target, const std::string& body) {
    api::ApiRequest req{"POST", target, body, "", true};
    api::ApiResponse out;
    int calls = 0;
    api::handle(*gw_, *gw_->loops()[0], req, [&](api::ApiResponse r) {
      ++calls;
      out = std::move(r);
    });
    gw_->loops()[0]->io().poll();
    EXPECT_EQ(calls, 1);
    return out;
  }

  std::uint64_t pending(const std::string& cid) {
    std::uint64_t n = 0;
    gw_->engine().read_inbox(cid, Id{}, 1000, [&](auto r) { n = r.value.size(); });
    return n;
  }

  std::string stored_data(const std::string& cid) {
    std::string data;
    gw_->engine().read_inbox(cid, Id{}, 1000, [&](auto r) {
      if (!r.value.empty()) data = *r.value.back().data;
    });
    return data;
  }

  std::unique_ptr<Gateway> gw_;
};

// Found by http_fuzz: Boost.JSON reads 1e400 as infinity and 0e400 as NaN, and writes them back as
// `Infinity` / `NaN`. Where the data could not be kept as written (here: an escaped key beside it),
// Herald stored and would have delivered that invalid JSON. Such numbers are refused everywhere.
TEST_F(ServiceApiTest, NumbersJsonCannotCarryAreRefused) {
  for (const char* body : {R"({"client_id":"u1","data":1e400})",
                           R"({"client_id":"u1","data":{"x":[-1e999]}})",
                           R"({"client_id":"u1","data":0e400})",
                           R"({"client_id":"u1","d\u0061ta2":0,"data":{"x":1e400}})",
                           R"({"client_id":"u1","data":1,"data":0e400})"}) {
    auto r = post("/v1/notifications", body);
    EXPECT_EQ(r.status, 400) << body;
    ASSERT_TRUE(r.error) << body;
    EXPECT_EQ(*r.error, Err::bad_request) << body;
  }
  auto batch = post("/v1/notifications/batch",
                    R"({"notifications":[{"client_id":"u1","data":1e400},{"client_id":"u1","data":2}]})");
  ASSERT_EQ(batch.status, 200);
  auto results = boost::json::parse(batch.body).at("results").as_array();
  EXPECT_EQ(results[0].at("status"), 400);
  EXPECT_EQ(results[1].at("status"), 202);
  EXPECT_EQ(pending("u1"), 1u);
}

TEST_F(ServiceApiTest, DataIsStoredAsWritten) {
  auto r = post("/v1/notifications", R"({"client_id":"u2","data": {"n":1.50, "big":12345678901234567890, "tiny":1e-400}})");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(stored_data("u2"), R"({"n":1.50, "big":12345678901234567890, "tiny":1e-400})");
  // Where it cannot be kept as written, it is written back as valid JSON.
  r = post("/v1/notifications", R"({"client_id":"u3","d\u0061ta2":0,"data":{"n":1.5}})");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(boost::json::parse(stored_data("u3")), boost::json::parse(R"({"n":1.5})"));
}

}  // namespace
