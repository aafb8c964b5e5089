-- amqp = "amqp://...": a real broker's URL is handed to every instance as it is, no links.
local procs = require "procs"

topology {
  amqp = "amqp://user:secret@127.0.0.1:5999/shop",
  grace = "2s",
  services = {
    show = { cmd = { "sh", "-c", 'echo "amqp=[$AMQP_URL]"; exec sleep 60' }, ready = "none",
             replicas = 2, env = { FL_IT_MARK = procs.mark } },
  },
}

scenario("every instance gets the real broker", function(t)
  for i = 1, 2 do
    t:eventually(function()
      return t:log("show-" .. i):find("amqp=[amqp://user:secret@127.0.0.1:5999/shop]", 1, true)
    end, "3s", "show-" .. i .. " has the URL as given")
  end
end)

scenario("t.broker faults need the fake", function(t)
  t.broker:restart() -- @usage t.broker:restart needs the fake broker (topology amqp = "fake", the default): this topology uses a real one
end)
