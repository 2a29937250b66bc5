// The one translation unit that compiles Asio and Beast. Everything else includes their headers
// with BOOST_ASIO_SEPARATE_COMPILATION / BOOST_BEAST_SEPARATE_COMPILATION and links this, so
// the heavy template bodies are built once per clean build instead of once per file.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
