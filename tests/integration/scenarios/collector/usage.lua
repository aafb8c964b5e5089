topology { services = { x = { cmd = { "sleep", "30" }, ready = "none", start = false } } }

scenario("bad t:traces arguments", function(t)
  t:traces("gateway") -- @usage bad t:traces argument: expected a table
end)
scenario("bad option", function(t)
  t:traces { servise = "x" } -- @usage t:traces option
end)
scenario("bad service type", function(t)
  t:traces { service = 3 } -- @usage bad t:traces service: expected a string, got a number
end)
scenario("unknown service", function(t)
  t:traces { service = "y" } -- @usage t:traces: no service named 'y'
end)
scenario("bad since", function(t)
  t:traces { since = "soon" } -- @usage t:traces since
end)
