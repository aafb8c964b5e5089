-- For test_junit.sh, file 1 of 2: pass, fail and skip, with a service that prints bytes a
-- report must escape (NUL, an ANSI escape, an invalid UTF-8 byte, "]]>", XML specials).
topology {
  services = {
    nasty = {
      cmd = { "sh", "-c", [==[printf 'nasty: nul[\000] esc[\033[31m] ff[\377] cdata[]]>] xml[<&"'"'"'>] end\n'; exec sleep 100]==] },
      ready = "none",
    },
  },
}

local function nasty_printed(t)
  local n = t:instance("nasty")
  t:eventually(function() return t:log(n):find("end\n", 1, true) end, "2s", "nasty printed")
end

scenario("passes", function(t)
  nasty_printed(t)
  t:note("a note with ]]> and <&> and \27[1m")
end)

scenario("fails", function(t)
  nasty_printed(t)
  t:expect(1 == 2, "one equals two & <ok> ]]>")
end)

scenario("skipped", { skip = "not today" }, function(t) end)
