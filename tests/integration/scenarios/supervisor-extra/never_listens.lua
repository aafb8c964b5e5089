-- Setup fails when a service never listens: after its ready_timeout, naming it.
local procs = require "procs"

topology {
  services = {
    fine = { cmd = { "echo-svc" }, env = { FL_IT_MARK = procs.mark } },
    mute = { cmd = { "sleep", "100" }, ready_timeout = "400ms", env = { FL_IT_MARK = procs.mark } },
  },
}

scenario("a service that never listens", function(t)
  t:note("MUST NOT RUN")
end)
