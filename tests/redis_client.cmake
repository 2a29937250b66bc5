# Tests of the Redis client against real redis-server processes that the tests start themselves
# (on free loopback ports; skipped when no redis-server is installed). Needs herald_redis_client
# (cmake/redis_client.cmake) and enable_testing() before this file is included.
if(NOT TARGET GTest::gtest_main)
  find_package(GTest REQUIRED)
endif()
include(GoogleTest)

add_executable(redis_client_tests ${CMAKE_CURRENT_LIST_DIR}/unit/redis_client_test.cpp)
target_link_libraries(redis_client_tests PRIVATE herald_redis_client GTest::gtest_main)
gtest_discover_tests(redis_client_tests DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 120)
