-- expect: this t belongs to a scenario that has ended
local saved

scenario("keeps its t", function(t)
  saved = t
end)

scenario("uses the old t", function(t)
  saved:note("from the past") -- @error
end)
