-- Setup fails when a service exits before it is ready: the verdict names it and its exit code.
local procs = require "procs"

topology {
  services = {
    fine = { cmd = { "echo-svc" }, replicas = 2, env = { FL_IT_MARK = procs.mark } },
    quitter = { cmd = { "sh", "-c", "echo giving up; exit 3" }, env = { FL_IT_MARK = procs.mark } },
  },
}

scenario("a service that exits at once", function(t)
  t:note("MUST NOT RUN")
end)
