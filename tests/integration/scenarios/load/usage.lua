-- Misuse of t:load, t:http, t:grpc and t.pb: usage errors at the calling line.
topology { services = { echo = { cmd = { "echo-svc" } } } }

scenario("not a table", function(t)
  t:load("echo") -- @usage bad t:load argument: expected a table
end)
scenario("unknown key", function(t)
  t:load { to = "echo", rate = 1, duration = 1, request = {}, concurency = 2 } -- @usage unknown t:load option key 'concurency' (did you mean 'concurrency'?)
end)
scenario("no rate", function(t)
  t:load { to = "echo", duration = 1, request = {} } -- @usage t:load: missing 'rate'
end)
scenario("zero rate", function(t)
  t:load { to = "echo", rate = 0, duration = 1, request = {} } -- @usage bad t:load rate: 0 requests/s
end)
scenario("absurd rate", function(t)
  t:load { to = "echo", rate = 1e9, duration = 1, request = {} } -- @usage bad t:load rate: 1e+09 requests/s (want more than 0 and at most 1e+06)
end)
scenario("no request", function(t)
  t:load { to = "echo", rate = 1, duration = 1 } -- @usage t:load: missing 'request'
end)
scenario("request of a bad type", function(t)
  t:load { to = "echo", rate = 1, duration = 1, request = "/" } -- @usage bad t:load request: expected a table or a function(i) returning one, got a string
end)
scenario("unknown service", function(t)
  t:load { to = "ecko", rate = 1, duration = 1, request = {} } -- @usage bad t:load to: no service or instance named 'ecko' (did you mean 'echo'?)
end)
scenario("no to", function(t)
  t:load { rate = 1, duration = 1, request = {} } -- @usage t:load to is missing
end)
scenario("unknown request key", function(t)
  t:load { to = "echo", rate = 1, duration = 1, request = { pth = "/" } } -- @usage unknown request key 'pth' (did you mean 'path'?)
end)
scenario("mixed request", function(t)
  t:load { to = "echo", rate = 1, duration = 1, request = { grpc = "/a.B/C", path = "/" } } -- @usage request key 'path' does not go with a gRPC request
end)
scenario("bad path", function(t)
  t:load { to = "echo", rate = 1, duration = 1, request = { path = "no slash" } } -- @usage is not valid HTTP
end)
scenario("bad header value", function(t)
  t:load { to = "echo", rate = 1, duration = 1, request = { headers = { x = "a\r\nb" } } } -- @usage request headers 'x': a value cannot hold CR, LF or NUL
end)
scenario("bad concurrency", function(t)
  t:load { to = "echo", rate = 1, duration = 1, request = {}, concurrency = 0 } -- @usage bad t:load concurrency: expected a whole number from 1 to 10000, got 0
end)
scenario("zero duration", function(t)
  t:load { to = "echo", rate = 1, duration = 0, request = {} } -- @usage bad t:load duration: must be more than 0
end)
scenario("request function returning a string", function(t)
  t:load { to = "echo", rate = 1, duration = 1, request = function() return "/" end } -- @usage t:load request function returned a string for request 1
end)
scenario("wait on an endless load", function(t)
  local l = t:load { to = "echo", rate = 1, request = {} }
  l:wait() -- @usage load:wait: the load 'echo' has no duration
end)
scenario("unknown method on a load", function(t)
  local l = t:load { to = "echo", rate = 1, duration = 1, request = {} }
  l:stat() -- @usage a load has no method 'stat' (did you mean 'stats'?)
end)
scenario("results without keep", function(t)
  local l = t:load { to = "echo", rate = 1, duration = 1, request = {} }
  l:results() -- @usage load:results: the load 'echo' keeps no results (start it with keep = true)
end)
scenario("t:http option", function(t)
  t:http { to = "echo", pat = "/" } -- @usage unknown t:http option key 'pat' (did you mean 'path'?)
end)
scenario("t:http timeout", function(t)
  t:http { to = "echo", timeout = 0 } -- @usage bad t:http timeout: must be more than 0
end)
scenario("t:grpc without method", function(t)
  t:grpc { to = "echo" } -- @usage t:grpc: missing 'method'
end)
scenario("t:grpc bad method", function(t)
  t:grpc { to = "echo", method = "Users.Get" } -- @usage bad t:grpc method: expected a method path like "/shop.Users/GetUser"
end)
scenario("pb encode argument", function(t)
  t.pb.encode("x") -- @usage bad t.pb.encode argument: expected a table
end)
scenario("pb decode argument", function(t)
  t.pb.decode({}) -- @usage bad t.pb.decode argument: expected bytes (a string), got a table
end)
scenario("a load kept past its scenario", function(t)
  _G.kept = t:load { to = "echo", rate = 1, duration = 1, request = {} }
end)
scenario("...is refused", function(t)
  _G.kept:stats() -- @usage load:stats: this load belongs to a scenario that has ended
end)
