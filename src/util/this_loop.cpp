#include "util/this_loop.hpp"

namespace herald {

namespace {
thread_local int current = -1;
}

int this_loop_index() { return current; }
void set_this_loop_index(int index) { current = index; }

}  // namespace herald
