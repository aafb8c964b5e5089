# docs/faultline.lua (the LuaLS ---@meta file editors load) is valid Lua and annotates the
# whole scenario API: every method the prelude defines on t, faults, links, t.consul,
# t.broker and a nemesis, every C method of t, every toxic kind, and every field of an instance.
. "$(dirname "$0")/lib.sh"
it_init

META="$FL_SOURCE_DIR/docs/faultline.lua"
PRELUDE="$FL_SOURCE_DIR/harness/prelude.lua"
if luac5.4 -p "$META" 2>"$FL_TMP/luac.err"; then
    ok "faultline.lua compiles"
else
    fail "faultline.lua does not compile"
    show "$FL_TMP/luac.err"
fi
expect_grep '^---@meta faultline$' "$META"

# prelude class -> meta class
for pair in T:T Fault:Fault LinkSet:Links Consul:Consul Broker:Broker Nemesis:Nemesis; do
    from=${pair%%:*}
    to=${pair#*:}
    for m in $(sed -n "s/^function $from:\([a-z_]*\)(.*/\1/p" "$PRELUDE"); do
        expect_fgrep "function $to:$m(" "$META"
    done
done
# t's methods written in C (engine.c t_methods)
for m in $(sed -n '/^static const luaL_Reg t_methods/,/^};/p' "$FL_SOURCE_DIR/harness/engine.c" |
    grep -o '{"[a-z_]*"' | tr -d '{"'); do
    expect_fgrep "function T:$m(" "$META"
done
# toxic kinds (one file each under harness/toxics/): one method each on links
for f in "$FL_SOURCE_DIR"/harness/toxics/*.c; do
    k=$(basename "$f" .c)
    [ "$k" = registry ] && continue
    expect_fgrep "function Links:$k(" "$META"
done
# instance fields (lua-api.md's table)
for f in $(sed -n '/^## Instances/,/^## Links/p' "$FL_SOURCE_DIR/docs/lua-api.md" |
    grep -o '^| `[a-z_]*`\(, `[a-z_]*`\)*' | grep -o '[a-z_][a-z_]*'); do
    expect_grep "^---@field $f[? ]" "$META"
done
it_done
