#!/bin/sh
# An experiment for issue 13, not what Compile builds: what a 50k-entry
# table would cost the kernel if a plain permit's map element named its
# counter (an object map, `counter name KEY map @M_c return`) instead of
# `goto` a chain of one counter rule. Applies an N-entry ACL
# (scripts/gen-acl.sh) through aclagent, lists the table, rewrites it to
# that layout (python3, below), then alternates in fresh namespaces: `nft
# -f` of each layout, and one element change of each, whose longest
# netlink syscall (strace -T) is the kernel's commit. A `goto` element
# makes the kernel validate the whole table on commit; a counter element
# does not. Needs root, nft, strace, python3.
#   N=50000 ROUNDS=3 scripts/bench-objref-layout.sh
set -eu
cd "$(dirname "$0")/.."
n=${N:-50000}
rounds=${ROUNDS:-3}
tmp=$(mktemp -d)
ns=slxobj$$
cleanup() {
	[ -f "$tmp/pid" ] && kill -9 "$(cat "$tmp/pid")" 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/" ./cmd/aclagent ./cmd/slxsh
now() { date +%s.%N; }
fresh() {
	ip netns del "$ns" 2>/dev/null || true
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip -n "$ns" link add eth1 type veth peer name eth1p
	ip -n "$ns" link set eth1 up
}
fresh
: >"$tmp/startup-config"
ip netns exec "$ns" "$tmp/aclagent" --socket "$tmp/a.sock" --config "$tmp/startup-config" \
	--mgmt-interface lo --admin-group root >"$tmp/log" 2>&1 &
echo $! >"$tmp/pid"
until grep -q 'msg=ready' "$tmp/log"; do sleep 0.05; done
{ echo "configure terminal"; scripts/gen-acl.sh "$n"; } >"$tmp/conf"
"$tmp/slxsh" --socket "$tmp/a.sock" -f "$tmp/conf" >/dev/null 2>&1
ip netns exec "$ns" nft list table inet slxsh | grep -v '^[[:space:]]*size 65535$' >"$tmp/goto.nft"
kill -9 "$(cat "$tmp/pid")"
rm -f "$tmp/pid"
seq=$((n / 2 + 1)) # a plain permit (every hundredth entry has a connlimit)
python3 - "$tmp" "$seq" <<'EOF'
import re, sys
tmp, seq = sys.argv[1], sys.argv[2]
src = open(tmp + "/goto.nft").read().split("\n")
plain = {}  # entry chain -> its counter, for chains of one counter rule
for i, l in enumerate(src):
    m = re.match(r"\tchain (\S+) \{$", l)
    if m and i + 2 < len(src) and src[i + 2] == "\t}":
        r = re.match(r'\t\tmeta l4proto \S+ counter name "(\S+)" return comment', src[i + 1])
        if r:
            plain[m.group(1)] = r.group(1)
out, i, change = [], 0, {}
while i < len(src):
    l = src[i]
    m = re.match(r"\tchain (\S+) \{$", l)
    if m and m.group(1) in plain:
        i += 4  # the chain, its rule, its end, a blank line
        continue
    m = re.match(r"\tmap (\S+) \{$", l)
    if m:
        name, typ, flags, j, elems = m.group(1), src[i + 1], src[i + 2], i + 3, []
        while True:
            s = src[j].strip().replace("elements = {", "").strip()
            end = s.endswith("}")
            s = s.rstrip("}").strip().rstrip(",")
            if s:
                elems.append(s)
            j += 1
            if end:
                break
        keep, counted = [], []
        for e in elems:
            k, v = e.split(" : ")
            c = v.split()[-1]
            if v.startswith("goto ") and c in plain:
                counted.append(k + ' : "' + plain[c] + '"')
                if c.endswith("_" + seq):
                    change = {"goto": (name, k, v), "objref": (name + "_c", k, '"' + plain[c] + '"')}
            else:
                keep.append(e)
        for nm, t, es in ((name, typ, keep), (name + "_c", typ.replace(": verdict", ": counter"), counted)):
            out += ["\tmap " + nm + " {", t, flags]
            if es:
                out.append("\t\telements = { " + ",\n\t\t\t     ".join(es) + " }")
            out += ["\t}", ""]
        i = j + 1
        if i < len(src) and src[i] == "":
            i += 1
        continue
    m = re.match(r"\t\t(.*) vmap @(\S+) (comment .*)$", l)
    if m:
        out.append("\t\tcounter name " + m.group(1) + " map @" + m.group(2) + "_c return " + m.group(3))
    out.append(l)
    i += 1
open(tmp + "/objref.nft", "w").write("\n".join(out))
for kind, (mp, k, v) in change.items():
    # move the element to another source and back, as a one-line change would
    a, b = k, "10.254.0.1" + k[k.index(" "):]
    open(tmp + "/" + kind + "-change1.nft", "w").write(
        f"delete element inet slxsh {mp} {{ {a} }}\nadd element inet slxsh {mp} {{ {b} : {v} }}\n")
    open(tmp + "/" + kind + "-change2.nft", "w").write(
        f"delete element inet slxsh {mp} {{ {b} }}\nadd element inet slxsh {mp} {{ {a} : {v} }}\n")
print(len(plain), "plain permits; chains", sum(1 for l in src if l.startswith("\tchain ")),
      "before,", sum(1 for l in out if l.startswith("\tchain ")), "after")
EOF
commit() { # the longest netlink syscall of nft -f: the commit
	ip netns exec "$ns" strace -T -e trace=sendmsg,recvmsg,sendto,recvfrom nft -f "$1" 2>&1 |
		sed -n 's/.*<\([0-9.]*\)>$/\1/p' | sort -n | tail -1
}
for r in $(seq "$rounds"); do
	for layout in goto objref; do
		fresh
		t0=$(now)
		ip netns exec "$ns" nft -f "$tmp/$layout.nft"
		full=$(echo "$(now) - $t0" | bc)
		c1=$(commit "$tmp/$layout-change1.nft")
		c2=$(commit "$tmp/$layout-change2.nft")
		echo "round $r $layout: nft -f ${full} s; one element change, kernel commit ${c1} s and ${c2} s"
	done
done
