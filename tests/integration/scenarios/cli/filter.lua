-- Three trivial scenarios for --filter, which matches "file: name" as a Lua pattern.
scenario("alpha one", function(t) end)
scenario("alpha two", function(t) end)
scenario("beta 3", function(t) end)
