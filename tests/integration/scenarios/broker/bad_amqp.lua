topology {
  amqp = "rabbit",
  services = { x = { cmd = { "sh", "-c", "sleep 1" } } },
}
scenario("never runs", function(t) end)
