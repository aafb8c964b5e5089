-- Runs last (files run in name order): every process the earlier scenarios started is gone.
local procs = require "procs"

scenario("earlier scenarios left no process behind", function(t)
  local left = procs.marked()
  t:expect(#left == 0, "processes still running: " .. table.concat(left, " "))
end)
