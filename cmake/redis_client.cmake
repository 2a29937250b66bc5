# The Redis client (src/engine/redis): hiredis only parses and formats RESP; the I/O is ours, on
# Asio (herald_asio). Paths are relative to this file, so it can be included from anywhere.
find_package(PkgConfig REQUIRED)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)

add_library(herald_redis_client STATIC
  ${CMAKE_CURRENT_LIST_DIR}/../src/engine/redis/redis_client.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/engine/redis/reply_reader.cpp)
target_include_directories(herald_redis_client PUBLIC ${CMAKE_CURRENT_LIST_DIR}/../src)
# hiredis stays private: the header does not expose it (and its -I/usr/include/hiredis would
# put generic names like read.h and sds.h on everyone's include path).
target_link_libraries(herald_redis_client
  PUBLIC herald_asio
  PRIVATE PkgConfig::HIREDIS OpenSSL::Crypto)
