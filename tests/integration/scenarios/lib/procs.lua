-- Process inspection for the integration scenarios (Linux /proc). `require "procs"` finds
-- this file because scenarios/lib/ is on every scenario's module path.
local M = {}

-- The marker every test service carries as FL_IT_MARK: the test passes it in $IT_MARK.
M.mark = os.getenv("IT_MARK") or "manual"

local function read(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- State letter of a process ("S", "R", "T" for stopped...), or nil when it is gone.
function M.state(pid)
  local stat = read("/proc/" .. pid .. "/stat")
  return stat and stat:match("^%d+ %(.*%) (%S)")
end

-- The processes of inst's process group other than its shim (the group leader, inst.pid):
-- the service and its descendants, as { [pid] = state letter }, and their count.
function M.group(inst)
  local out, n = {}, 0
  local p = assert(io.popen("cat /proc/[0-9]*/stat 2>/dev/null"))
  for line in p:lines() do
    local pid, state, pgrp = line:match("^(%d+) %(.*%) (%S) %d+ (%d+)")
    pid, pgrp = tonumber(pid), tonumber(pgrp)
    if pid and pgrp == inst.pid and pid ~= inst.pid then
      out[pid] = state
      n = n + 1
    end
  end
  p:close()
  return out, n
end

-- True when every process of inst's group (shim excluded) is in state letter `want`.
function M.all_in_state(inst, want)
  local procs, n = M.group(inst)
  if n == 0 then return false end
  for _, s in pairs(procs) do
    if s ~= want then return false end
  end
  return true
end

-- True when inst's group (shim excluded) has processes and none of them is stopped: each
-- may be sleeping or running, whichever the scheduler has it doing at the moment.
function M.running(inst)
  local procs, n = M.group(inst)
  if n == 0 then return false end
  for _, s in pairs(procs) do
    if s == "T" or s == "t" then return false end
  end
  return true
end

-- PIDs of processes that carry this run's marker in their environment.
function M.marked()
  local pids = {}
  local p = assert(io.popen("grep -lsaF 'FL_IT_MARK=" .. M.mark .. "' /proc/[0-9]*/environ 2>/dev/null"))
  for line in p:lines() do
    pids[#pids + 1] = tonumber(line:match("^/proc/(%d+)/"))
  end
  p:close()
  return pids
end

-- Occurrences of the plain text `needle` in `s`.
function M.count(s, needle)
  local n, i = 0, 1
  while true do
    local a, b = s:find(needle, i, true)
    if not a then return n end
    n, i = n + 1, b + 1
  end
end

return M
