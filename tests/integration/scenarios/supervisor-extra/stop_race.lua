-- A stop that comes right after a start must still be a SIGTERM the service sees, not a
-- SIGKILL after the grace period.
local procs = require "procs"

topology {
  grace = "1s",
  services = {
    sleeper = { cmd = { "sleep", "100" }, ready = "none", start = false,
                env = { FL_IT_MARK = procs.mark } },
  },
}

scenario("stop right after start", function(t)
  local s = t:instance("sleeper")
  -- the stop lands at various moments of the instance's first milliseconds
  for round = 1, 60 do
    t:start(s)
    local delay = (round % 12) * 0.00025
    local spin = t:now()
    while t:now() - spin < delay do end
    local before = t:now()
    t:stop(s)
    local took = t:now() - before
    t:assert(s.signal == 15 and took < 0.5, string.format(
      "round %d: stopped by %s after %.3fs, want SIGTERM (15) at once", round,
      s.signal and ("signal " .. s.signal) or ("exit " .. tostring(s.exit_code)), took))
  end
end)
