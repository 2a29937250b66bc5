// The scenarios, run by the controller process: each starts its herald (or uses --target), its
// worker pool and its service driver, measures, checks every delivery, and writes one JSON line.
//
// The line: {"scenario","at","label","params":{…},"figures":{…},"lost","duplicates",
//            "checks":{…},"herald":{…},"ok"} — printed on stdout and appended to --out.
// `ok` is false when any check failed (lost, duplicates, out of order, misrouted, id mismatch,
// clients that could not connect) or the scenario ran out of time; the exit code is 1 then.
#pragma once

#include "options.hpp"

namespace bench {

int run_scenario(Options& options);

}  // namespace bench
