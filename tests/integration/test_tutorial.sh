# docs/writing-scenarios.md cannot rot: every Lua block marked "runs as FILE" must appear
# verbatim in FILE (under tests/integration/scenarios/tutorial/), every file there (lib/ too)
# must be shown in the guide, and every one of those files must pass against the real shop
# services.
. "$(dirname "$0")/lib.sh"
it_init
IT_LIMIT=150

DOC="$FL_SOURCE_DIR/docs/writing-scenarios.md"
python3 - "$DOC" "$FL_SOURCE_DIR" >"$FL_TMP/blocks" 2>&1 <<'PY'
import os, re, sys
doc, root = sys.argv[1], sys.argv[2]
text = open(doc, encoding="utf-8").read()
marks = re.findall(r"<!-- runs as (\S+) -->\n```lua\n(.*?)```\n", text, re.S)
if len(marks) != text.count("<!-- runs as "):
    print("FAIL: a 'runs as' marker is not followed by a ```lua block")
shown = set()
for path, block in marks:
    shown.add(path)
    try:
        body = open(os.path.join(root, path), encoding="utf-8").read()
    except OSError as e:
        print("FAIL: %s: %s" % (path, e))
        continue
    if block in body:
        print("ok: the guide's block is in %s (%d lines)" % (path, block.count("\n")))
    else:
        print("FAIL: the guide's block for %s is not in that file" % path)
tut = "tests/integration/scenarios/tutorial"
for d, _, files in sorted(os.walk(os.path.join(root, tut))):
    for f in sorted(files):
        rel = os.path.relpath(os.path.join(d, f), root)
        if f.endswith(".lua"):
            print(("ok: %s is shown in the guide" if rel in shown else
                   "FAIL: %s is not shown in the guide") % rel)
PY
cat "$FL_TMP/blocks"
IT_CHECKS=$((IT_CHECKS + $(grep -c '^ok: ' "$FL_TMP/blocks")))
n=$(grep -c '^FAIL' "$FL_TMP/blocks")
IT_CHECKS=$((IT_CHECKS + n))
IT_FAILS=$((IT_FAILS + n))
expect_grep '^ok: .*tutorial/first\.lua is shown' "$FL_TMP/blocks"
expect_grep '^ok: .*tutorial/lib/shop\.lua is shown' "$FL_TMP/blocks"

MARK=$(new_mark)
for f in tutorial/*.lua; do
    suite "$f"
done
it_done
