-- expect: unexpected symbol near '='
scenario("never loads", function(t)
  local x = 1
  local y = = 2 -- @error
end)
