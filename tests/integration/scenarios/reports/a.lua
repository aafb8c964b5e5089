-- For test_reports.sh and test_browser.sh: a run with every kind of event the reports draw
-- (process lanes, link faults with counters, a pause, a crash, fake Consul faults, passed and
-- failed assertions), a failing and a skipped scenario, and a service that prints bytes every
-- report must escape (NUL, ESC, invalid UTF-8, "]]>", markup, a bidi override).
topology {
  services = {
    echo = { cmd = { "echo-svc" }, replicas = 2 },
    client = { cmd = { "pinger" }, needs = { "echo" },
               env = { PINGER_INTERVAL_MS = 20, PINGER_TIMEOUT_MS = 300 } },
    nasty = {
      cmd = { "sh", "-c", [==[printf 'nasty: nul[\000] esc[\033[31m] ff[\377] cdata[]]>] tag[<script>alert(1)</script>] bidi[\342\200\256] end\n'; exec sleep 100]==] },
      ready = "none",
    },
  },
}

scenario("faults come and go, and the client copes", function(t)
  local c = t:instance("client")
  local slow = t:link(c, "echo"):latency { ms = 50 }
  t:sleep("300ms")
  t:expect(slow:stats().fired, "the latency fault fired")
  slow:remove()
  t:pause("echo-2")
  t:sleep("100ms")
  t:resume("echo-2")
  t:crash(t:instance("echo", 1))
  t:restart(t:instance("echo", 1))
  t.consul:down()
  t:sleep("50ms")
  t.consul:up()
  local p = t:partition(c, "echo-1")
  t:sleep("100ms")
  t:heal()
  t:expect(p:stats().active == false, "the partition is healed")
end)

scenario("fails while a partition is on <&>", function(t)
  local c = t:instance("client")
  t:partition(c, "echo")
  t:sleep("200ms")
  t:expect(t:log("nasty-1"):find("end", 1, true), "nasty printed")
  t:expect(false, "the client reached echo during the partition & <more>")
end)

scenario("skipped", { skip = "not today" }, function(t) end)
