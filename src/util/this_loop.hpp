// Which event loop the calling thread runs (-1 on any other thread). Lets lower layers (an
// engine's per-loop connections) stay on the caller's loop without knowing about loops.
#pragma once

namespace herald {

int this_loop_index();
void set_this_loop_index(int index);

}  // namespace herald
