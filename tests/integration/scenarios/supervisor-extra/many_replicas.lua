-- Replicas go up to 254: however many instances a scenario has, each gets its own port.
local procs = require "procs"

topology {
  services = {
    many = { cmd = { "sleep", "100" }, ready = "none", replicas = 120,
             env = { FL_IT_MARK = procs.mark } },
  },
}

scenario("120 replicas, 120 ports", function(t)
  local seen, dups = {}, {}
  for _, i in ipairs(t:instances("many")) do
    if seen[i.port] then dups[#dups + 1] = i.name .. " shares " .. i.port .. " with " .. seen[i.port] end
    seen[i.port] = seen[i.port] or i.name
  end
  t:expect(#t:instances("many") == 120, "120 instances")
  t:expect(#dups == 0, #dups .. " duplicate ports: " .. table.concat(dups, ", "))
end)
