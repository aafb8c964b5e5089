-- expect: must run in the scenario itself, not in a coroutine it created
scenario("sleeps in a coroutine", function(t)
  local co = coroutine.wrap(function()
    t:sleep("10ms") -- @error
  end)
  co()
end)
