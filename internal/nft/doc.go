// Package nft compiles a slxsh configuration into the one nftables table
// that enforces it (Compile, pure), renders it as `nft list` prints it
// (Ruleset.String), and applies it over netlink (the Applier).
//
// # The table
//
//	table inet slxsh
//	 counters  ip_check_in_10_matches / _refused     per entry and direction (named
//	           ip_check_in_implicit_refused          objects keep their values when
//	           ip_check_in_blocked_refused           rules are replaced)
//	 sets (size)
//	   ip_check_in_10_src_3          SetSize  one dynamic set per connlimit, named
//	   ip_check_in_20_p24_2          SetSize  family_acl_dir_seq_key_over (key src |
//	   ip6_web_in_10_p64_2           SetSize  dst | pLEN | total); elements carry
//	   ip_check_in_30_total_100      SetSize  `ct count over <over>`
//	   ip_check_in_10_src_3_g        2        its reservation sets (below): gate
//	                                          (created closed, elements = { ipv4 }),
//	   ip_check_in_10_src_3_r, _rf   -        reserved and full keys, layer
//	   ip_check_in_10_src_3_r1, _l1  -        members and counts (unsized)
//	   ip_check_in_40_rate_src_10s_5 SetSize  per-source rate, with timeout
//	   ip_check_in_blocked           SetSize  block-for sources, with timeout
//	   ip_check_in_45_load_250       2        load-limit flag, set by the agent
//	 chains
//	   input    hook input   priority filter (0), policy accept
//	   forward  hook forward priority filter (0), policy accept
//	   output   hook output  priority filter (0), policy accept
//	     ct mark & 0x40000000 == 0x40000000 tcp flags ! rst reject with tcp reset
//	                                                 (flows the agent marked for ending)
//	     ct state established,related accept        (admitted sessions always pass)
//	     iifname "eth0" meta nfproto ipv4 jump ip_check_in     `in`:  input + forward
//	     oifname "eth1" meta nfproto ipv4 jump ip_egress_out   `out`: output + forward
//	   refuse           TCP: reject with tcp reset; else icmpx admin-prohibited
//	   ip_check_in      one chain per applied ACL and direction (ip6_NAME_DIR
//	   ip_egress_out    for IPv6 lists): entries in seq order, implicit deny last
//	   ip_check_in_10_block   per entry with block-for: add the source to
//	                          ip_check_in_blocked, then refuse
//	   ip_check_in_10_src_3_res   per connlimit: the layers of keys with old
//	                          sessions (reached only by them)
//
// SetSize is Options.SetSize (aclagent --limit-set-size, default
// DefaultSetSize 65535); "-" is no size (grows on demand). The kernel
// preallocates a set's hash table for its size, about 2 MiB at 65535
// (setmem.go): Ruleset.SetMemory estimates the total and Compile refuses
// a configuration over Options.MaxSetMemory.
//
// Priority 0 (filter) with policy accept: traffic on interfaces without an
// access-group is not ours to judge, and other tables still see everything.
// Only the first packet of a connection reaches an ACL chain.
//
// A permitted connection `return`s to the base chain instead of accepting,
// so that routed traffic is also judged by the `out` ACL of the outgoing
// interface in the forward chain. Refusals are terminal (reject or drop).
//
// # Entries
//
// Every rule carries a comment `acl=NAME dir=DIR seq=N` (`acl6=` for IPv6
// lists; `implicit-deny` instead of seq), with a role word when an entry
// takes several rules; ParseComment reads it back. MATCH is the entry's
// addresses and protocol/ports; REFUSE is `reject with tcp reset` (tcp
// entries), `reject with icmpx admin-prohibited` (other protocols), `jump
// refuse` (ip/ipv6 entries), or `drop` (hard-drop, `refuse drop`).
//
//	permit                MATCH counter M return
//	deny, hard-drop       MATCH counter M counter R REFUSE
//	permit connlimit N    (T = N; every rule starts MATCH ct state new, ends counter R REFUSE)
//	                      counter M meta nfproto @S_g              gate: closed while the agent
//	                                                               counts sessions older than S
//	                      KEY @S_r jump S_res                      (role "depth": no counter,
//	                                                               no verdict of its own)
//	                      add @S { KEY ct count over T }           (role "connlimit")
//	                      KEY != @S                                (role "connlimit-full")
//	                      MATCH return                             (role "permit"; no ct state:
//	                                                               invalid packets of admitted
//	                                                               sessions pass as under permit)
//	deny connlimit N      the same checks with T = N-1: the Nth connection, this one
//	                      included, is refused; below that evaluation goes on
//	connlimit 0, deny connlimit 1: refuse every match (like deny)
//	IPv6 lists            icmpv6 type 133-136 return              (neighbour discovery, which
//	                                                               conntrack does not track)
//	implicit deny         counter name "..._implicit_refused" jump refuse
//
//	chain S_res           [meta l4proto tcp] KEY @S_rf counter R REFUSE      (role "reserved")
//	                      [...] KEY @S_rJ add @S_lJ { KEY ct count over T-J } counter R REFUSE
//	                      [...] KEY @S_rJ KEY != @S_lJ counter R REFUSE    (roles "layerJ",
//	                                                   "layerJ-full", J in Layers(T): every
//	                                                   depth to 64, then spaced)
//
// The reservation sets S_r, S_rf, S_rJ are filled by the agent (planned in
// internal/conntrack, written by elements.go) to count sessions that were
// open before S existed, which the kernel never adds to a count; empty,
// they change nothing. internal/conntrack's package doc says why this never
// admits over the limit. One chain, not a chain per depth: the kernel
// refuses jumps and gotos nested deeper than 16 chains (EMLINK).
//
// More limits on one entry are more check rules before the permit rule, in
// the order load-limit, rate, connlimit; only the first counts M, later ones carry their
// limit's name as role. `rate N per P [burst B] total` is `limit rate over
// N/P` in the rule (a replaced rule starts with a full bucket); per-source
// rate is `update @S { ip saddr limit rate over N/P }` on a set with timeout
// (idle sources are forgotten once their bucket would be full), followed by
// its own "rate-full" rule. MATCH ends in `meta skuid UID` for `user`/`uid`;
// `log` adds `log prefix "REASON acl=... dir=... seq=N "` before the verdict
// (REASON: permit, deny, load, rate, rate-full, connlimit, connlimit-full).
// `block-for S`: over-limit refusals of the entry jump to a chain NAME_block
// that adds the source to the ACL's blocked set with timeout S (in a rule of
// its own, so a full set loses the block, never the refusal) and refuses;
// `ct state new ip saddr @..._blocked jump refuse` at the top of the ACL
// chain refuses blocked sources (see compile_block.go). `load-limit` is a
// first check `meta nfproto @NAME_load_X` that the agent arms while the
// load is over the limit (compile_load.go). quota, time-range and `refuse
// message` are refused by Compile as not supported yet.
//
// KEY is `ip saddr` (per-source), `ip daddr` (per-destination), `ip saddr &
// MASK` (per-prefix) or `meta nfproto` (total: constant inside a
// single-family chain, so one element holds the shared count, and the count
// survives rule replacement because it lives in the set, not the rule).
//
// # Never failing open
//
// When a set is full, the kernel cannot add a new key: the dynset
// expression breaks the rule, which then does not match (measured: without
// the "-full" rule a third source passes a size-2 set unlimited). The "-full"
// rule that follows refuses any matching connection whose key is not in the
// set, i.e. one that was not counted. A key that was counted is in the set,
// so the rule lets it through to the permit rule (or, for deny, to the next
// entry).
//
// # Names
//
// Set names hold everything an element keeps from its creation (family, acl,
// direction, seq, key kind, and the `over` value), so a changed limit or key
// gets a new empty set while an unchanged entry keeps its set and counts
// whatever else changes. The seq is in the name: resequencing starts limited
// entries on new sets, and the agent recounts open sessions as for any new
// limit. Names longer than MaxNameLen end in a hash (shorten).
//
// # Statements
//
// Each Stmt renders as nft prints it and produces the netlink expressions
// nft 1.0.6 generates for that text; TestKernelGoldenRoundTrip proves both
// for every golden file (testdata/compile/*.conf -> *.nft) in a namespace.
// Exprs leave set IDs at zero: sets are referenced by name.
//
// # Changes
//
// Apply changes a chain rule by rule when it knows the handles of the
// rules the kernel holds: they come back in the kernel's echoes of each
// commit (batch.go), and stay valid while the ruleset generation is the
// one seen after our last commit. Rules are matched by text (comment
// included); the longest run that keeps its order stays, the rest is
// deleted by handle and inserted before the next rule that stays
// (rulediff.go). Rules that use a set or object re-created in the same
// transaction (renewals) are always replaced. The handles are saved beside
// the agent's state (applystate.go), so a restarted agent whose table
// nobody changed meanwhile commits nothing for the same ruleset.
//
// Sim (sim.go) is a kernel-free model of these rule shapes: connection
// attempts in, outcomes and counters out, for packet-flow table tests.
package nft
