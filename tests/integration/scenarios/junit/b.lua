-- For test_junit.sh, file 2 of 2: a Lua error, a usage error, a pass with a nasty name.
scenario("lua error", function(t)
  local cfg = nil
  return cfg.port
end)

scenario("usage error", function(t)
  t:crsh()
end)

scenario("nasty name ]]> & <tag> \"q\" 'a' \27[31m", function(t)
  t:note("passes")
end)

scenario("passes too", function(t) end)
