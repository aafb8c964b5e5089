-- Proves whether a scenario ran: it creates the file named by $IT_TOUCH.
scenario("touches a file", function(t)
  local f = assert(io.open(assert(os.getenv("IT_TOUCH"), "IT_TOUCH is not set"), "w"))
  f:write("ran\n")
  f:close()
end)
