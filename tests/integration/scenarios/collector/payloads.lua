-- The collector's receiver with payloads built by hand (lib/post.py): protobuf, gzip, JSON,
-- partial success, and bad payloads answered 400 with a reason, the collector still serving.

local SCRIPT = os.getenv("FL_SOURCE_DIR") and (os.getenv("FL_SOURCE_DIR") ..
  "/tests/integration/scenarios/collector/lib/post.py") or "collector/lib/post.py"

topology {
  services = {
    poster = { cmd = { "/usr/bin/python3", SCRIPT, "0" }, ready = "none", start = false,
               env = { FL_IT_MARK = os.getenv("IT_MARK") } },
  },
}

local function answers(t)
  local a = {}
  for label, status, hex in t:log("poster-1"):gmatch("(%w+) (%d+) (%x*)\n") do
    a[label] = { status = tonumber(status), body = hex }
  end
  return a
end

scenario("protobuf, gzip, JSON and partial success; bad payloads get 400", function(t)
  t:start("poster-1")
  t:eventually(function() return t:log("poster-1"):find("done") end, "10s", "every payload posted")
  local a = answers(t)
  t:expect(a.pb and a.pb.status == 200 and a.pb.body == "", "protobuf: 200, empty response")
  t:expect(a.gzip and a.gzip.status == 200, "gzip: 200")
  t:expect(a.json and a.json.status == 200 and a.json.body == ("{}"):gsub(".", function(c)
    return string.format("%02x", c:byte()) end), "JSON: 200 {}")
  -- partial_success { rejected_spans: 1, error_message: "invalid trace id..." }
  t:expect(a.partial and a.partial.status == 200 and a.partial.body:sub(1, 8) == "0a" ..
    a.partial.body:sub(3, 4) .. "0801", "partial success: 1 rejected: " .. (a.partial and a.partial.body or "?"))
  for _, bad in ipairs({ "garbage", "truncated", "badjson", "badgzip" }) do
    t:expect(a[bad] and a[bad].status == 400, bad .. ": 400, got " .. (a[bad] and a[bad].status or "nothing"))
  end
  t:expect(a.badtype and a.badtype.status == 415, "text/plain: 415")
  t:expect(a.empty and a.empty.status == 200, "an empty request is an empty export: 200")

  local tr = t:traces { service = "script" }
  t:expect(#tr == 3, "three traces from the script: " .. #tr)
  local one = t:traces { name = "child" }
  t:expect(#one == 1, "one trace by the name child")
  local x = one[1]
  t:expect(x.trace_id == "0af7651916cd43dd8448eb211c80319c", "hex trace id: " .. x.trace_id)
  t:expect(x.root.name == "root" and x.root.kind == "server" and x.root.span_id == "b7ad6b7169203331",
    "root span")
  t:expect(#x.root.children == 1 and x.root.children[1].name == "child" and
    x.root.children[1].kind == "client" and x.root.children[1].parent_id == "b7ad6b7169203331",
    "its child")
  t:expect(x.root.duration > 0.0049 and x.root.duration < 0.0051, "duration: " .. x.root.duration)
  t:expect(x.root.start == 0, "a start before the scenario is 0")
  t:expect(x.root.attributes.peer == "7" and x.root.instance == "script-x", "attributes, instance")
  local j = t:traces { service = "jsonsvc" }
  t:expect(#j == 1 and j[1].root.kind == "consumer" and j[1].root.status == "error" and
    j[1].root.status_message == "boom" and j[1].root.attributes.n == "42", "the JSON span")
  t:expect(#t:traces { service = "script", name = "zero trace id" } == 0, "the rejected span is not kept")
  t:expect(#t:traces {} == 4, "every trace without a filter")
end)
