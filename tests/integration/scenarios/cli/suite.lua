-- Pass, fail, pass, pass: for --quiet and --fail-fast. Each scenario that runs creates
-- $IT_TOUCH_DIR/<n>, so the test can tell which ones ran.
local function touch(n)
  local dir = os.getenv("IT_TOUCH_DIR")
  if dir then
    local f = assert(io.open(dir .. "/" .. n, "w"))
    f:close()
  end
end

scenario("first passes", function(t) touch(1) end)
scenario("second fails", function(t)
  touch(2)
  t:expect(false, "second is meant to fail")
end)
scenario("third passes", function(t) touch(3) end)
scenario("fourth passes", function(t) touch(4) end)
