-- faultline's Lua prelude: the parts of the scenario API that are clearest in Lua, built on
-- the C primitives in C (engine.c). Loaded once per scenario file, as chunk "=faultline",
-- so error locations skip it and point at the user's line.
local T, C = ...

local function seconds(d, what)
  return C.seconds(d, what)
end

local function check_fn(fn, what)
  if type(fn) ~= "function" then
    C.usage(string.format("bad %s: expected a function, got %s", what, C.typename(fn)))
  end
end

local function opt_msg(msg, what)
  if msg ~= nil and type(msg) ~= "string" then
    C.usage(string.format("bad %s message: expected a string, got %s", what, C.typename(msg)))
  end
  return msg
end

-- t:eventually(fn, [timeout=5s], [msg]): polls fn until it returns a true value (which is
-- returned); fails the scenario if that does not happen within timeout.
function T:eventually(fn, timeout, msg)
  check_fn(fn, "t:eventually condition")
  local limit = seconds(timeout == nil and 5 or timeout, "t:eventually timeout")
  msg = opt_msg(msg, "t:eventually") or "condition"
  local start, delay, last = C.now(self), 0.005, nil
  while true do
    local ok, res = pcall(fn)
    if ok and res then
      C.record(self, true, string.format("eventually %s (after %s)", msg, C.fmt(C.now(self) - start)))
      return res
    end
    if not ok then
      if C.ours(res) then error(res, 0) end
      last = tostring(res)
    end
    local elapsed = C.now(self) - start
    if elapsed >= limit then
      C.fail(self, string.format("eventually %s: still not true after %s%s", msg, C.fmt(limit),
        last and (" (last error: " .. last .. ")") or ""))
    end
    self:sleep(math.min(delay, limit - elapsed))
    delay = math.min(delay * 2, 0.1)
  end
end

-- t:always(fn, during, [msg]): checks fn repeatedly for the whole of during; fails the
-- scenario at the first check that is not true.
function T:always(fn, during, msg)
  check_fn(fn, "t:always condition")
  local limit = seconds(during, "t:always duration")
  msg = opt_msg(msg, "t:always") or "condition"
  local start, checks = C.now(self), 0
  while true do
    local ok, res = pcall(fn)
    checks = checks + 1
    if not ok and C.ours(res) then error(res, 0) end
    if not ok or not res then
      C.fail(self, string.format("always %s: broken after %s%s", msg, C.fmt(C.now(self) - start),
        ok and "" or (" (error: " .. tostring(res) .. ")")))
    end
    local elapsed = C.now(self) - start
    if elapsed >= limit then
      C.record(self, true, string.format("always %s (held for %s, %d checks)", msg, C.fmt(limit), checks))
      return true
    end
    self:sleep(math.min(0.01, limit - elapsed))
  end
end

function T:start(inst)
  local i = C.instance(self, inst, "t:start")
  C.act(self, i, "start")
  C.spawn(self, i)
  C.await(self, i, "ready")
  return i
end

function T:crash(inst)
  local i = C.instance(self, inst, "t:crash")
  C.act(self, i, "crash")
  C.kill(self, i)
  C.await(self, i, "down", 10)
  return i
end

function T:stop(inst, grace)
  local i = C.instance(self, inst, "t:stop")
  local g = grace == nil and C.grace(i) or seconds(grace, "t:stop grace")
  C.act(self, i, "stop")
  C.term(self, i, g)
  C.await(self, i, "down", g + 10)
  return i
end

function T:restart(inst, opts)
  local i = C.instance(self, inst, "t:restart")
  if opts ~= nil and type(opts) ~= "table" then
    C.usage("bad t:restart options: expected a table like { crash = true }, got " .. C.typename(opts))
  end
  C.keys(opts, "t:restart option", { "crash", "grace" })
  opts = opts or {}
  C.act(self, i, opts.crash and "restart (crash)" or "restart")
  if i.state ~= "down" then
    if opts.crash then
      C.kill(self, i)
      C.await(self, i, "down", 10)
    else
      local g = opts.grace == nil and C.grace(i) or seconds(opts.grace, "t:restart grace")
      C.term(self, i, g)
      C.await(self, i, "down", g + 10)
    end
  end
  C.spawn(self, i)
  C.await(self, i, "ready")
  return i
end

function T:pause(inst)
  local i = C.instance(self, inst, "t:pause")
  C.act(self, i, "pause")
  C.pause(self, i)
  return i
end

function T:resume(inst)
  local i = C.instance(self, inst, "t:resume")
  C.act(self, i, "resume")
  C.resume(self, i)
  return i
end

-- The body of every scenario coroutine: start the topology wave by wave (a service starts
-- once everything it needs is ready), then run the scenario function.
function C.main(t, fn, waves)
  for _, wave in ipairs(waves) do
    for _, inst in ipairs(wave) do C.spawn(t, inst) end
    for _, inst in ipairs(wave) do C.await(t, inst, "ready", nil, "setup: ") end
  end
  C.phase(t, "scenario")
  fn(t)
end
