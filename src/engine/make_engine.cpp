// The one place that names the concrete engines.
#include <stdexcept>

#include "engine/engine.hpp"
#include "engine/memory/memory_engine.hpp"
#include "engine/redis/redis_engine.hpp"

namespace herald::engine {

std::unique_ptr<Engine> make_engine(const std::string& kind, const EngineOptions& options) {
  if (kind == "memory") return std::make_unique<MemoryEngine>(options);
  if (kind == "redis") return std::make_unique<RedisEngine>(options);
  throw std::invalid_argument("engine '" + kind + "' is not built into this herald");
}

}  // namespace herald::engine
