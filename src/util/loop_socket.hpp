// The TCP socket type of client and API connections: bound to its loop's io_context executor
// rather than the polymorphic any_io_executor, which makes the socket and every pending
// operation on it 48 bytes smaller (an idle WebSocket connection always has a wait pending).
// Acceptors hand out this type directly (async_accept on the loop's io_context).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace herald {

using LoopSocket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;

}  // namespace herald
