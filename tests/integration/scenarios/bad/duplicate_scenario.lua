-- expect: scenario "same name" declared twice (first at bad/duplicate_scenario.lua:2)
scenario("same name", function(t) end)
scenario("another name", function(t) end)
scenario("same name", function(t) end) -- @error
