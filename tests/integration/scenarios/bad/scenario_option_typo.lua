-- expect: unknown scenario option key 'timout' (did you mean 'timeout'?)
scenario("fast", { timeout = "1s" }, function(t) end)
scenario("slow", { timout = "10s" }, function(t) end) -- @error
