-- The toy topology of the mutant-mode suites: toy.py, and a client that asks it for sums
-- (a+2 for each a in `as`) and, with count, how many requests it answered, then says done.
local M = {}

function M.topology(mutants, as, count, toy_env)
  local env = { FL_IT_MARK = os.getenv("IT_MARK") }
  for k, v in pairs(toy_env or {}) do env[k] = v end
  topology {
    mutants = mutants,
    services = {
      toy = { cmd = { "mutants/toy.py" }, env = env },
      client = { cmd = { "sh", "-c", [[
        for a in ]] .. as .. [[; do echo "sum $a $(curl -s "http://$TOY_ADDR/sum?a=$a&b=2")"; done
        ]] .. (count and [[echo "count $(curl -s "http://$TOY_ADDR/count")"]] or "") .. [[

        echo done; exec sleep 60]] }, needs = { "toy" }, ready = "none",
        env = { FL_IT_MARK = os.getenv("IT_MARK") } },
    },
  }
end

-- What the client printed, once it is done.
function M.output(t)
  t:eventually(function() return t:log("client-1"):find("done", 1, true) end, "10s", "the client finished")
  return t:log("client-1")
end

-- Every sum it got is right.
function M.expect_sums(t)
  for a, got in M.output(t):gmatch("sum (%d+) (%S*)") do
    t:expect(tonumber(got) == tonumber(a) + 2, string.format("%s+2 = %s", a, got))
  end
end

return M
