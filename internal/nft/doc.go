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
//	   adopt_grace                   2        the table's grace (GraceSet): ipv4, ipv6,
//	                                          created with it, expiring after 2m
//	   ip_check_in_10_src_3          SetSize  one dynamic set per connlimit, named
//	   ip_check_in_20_p24_2          SetSize  family_acl_dir_seq_key_over (key src |
//	   ip6_web_in_10_p64_2           SetSize  dst | pLEN | total); elements carry
//	   ip_check_in_30_total_100      SetSize  `ct count over <over>`
//	   ip_check_in_10_src_3_g        2        its reservation sets (below): gate
//	                                          (created closed, elements = { ipv4 }),
//	   ip_check_in_10_src_3_r, _rf   -        reserved and full keys, layer
//	   ip_check_in_10_src_3_r1, _l1  -        members and counts (unsized)
//	   ip_check_in_eHASH_rate_src_10s_5 SetSize  rate: token bucket (burst 5) per key, or
//	   ip_check_in_eHASH_rate_total_9m_win      fixed window (no burst), with timeout
//	   ip_check_in_eHASH_quota_src_100k_1m SetSize  quota window per key, with timeout
//	                                         (HASH: of the entry without its seq, so
//	                                         that a resequence keeps them; windowBase)
//	   ip_check_in_10_blocked        SetSize  block-for sources of seq 10, with timeout
//	   ip_check_in_10_blocked_full   2        its full flag (fail closed), with timeout
//	   ip_check_in_45_load_250       2        load-limit flag, set by the agent
//	   ip_check_in_map10_17          -        classification map of a run of entries (Maps)
//	   ip_check_in_map10_17_c        -        its plain permits' counters (Maps)
//	 chains
//	   prerouting  type filter hook prerouting priority dstnat - 2 (-102), policy accept
//	     ct direction reply ct mark & 0x08000000 == 0x08000000
//	       ct mark set ct mark & 0xf7ffffff | 0x10000000   (ghost-answered: back to the agent)
//	     ct state established,related accept        (admitted sessions always pass)
//	     ct state new tcp flags syn / fin,syn,rst,ack ct mark & 0x18000000 != 0x00000000
//	       reject with tcp reset                     (adopted-syn: a SYN on a pickup's tuple)
//	     ct state new tcp flags != syn / fin,syn,rst,ack meta nfproto @adopt_grace
//	       ct mark set ct mark | 0x10000000 accept   (adopt: sessions open before conntrack,
//	                                                  in the 2 minutes after the table's creation)
//	     ct state new tcp flags != syn / fin,syn,rst,ack ct mark set ct mark | 0x10000000
//	                                                 (pickup: later, judged by the ACLs,
//	                                                  which skip its limits: ct mark & 0x10000000 == 0)
//	     iifname "eth0" meta nfproto ipv4 jump ip_check_in     `in`: to the host and routed
//	   input    hook input   priority filter (0), policy accept
//	   forward  hook forward priority filter (0), policy accept
//	   output   hook output  priority filter (0), policy accept
//	     ct mark & 0x40000000 == 0x40000000 tcp flags ! rst reject with tcp reset
//	                                                 (flows the agent marked for ending)
//	     ct state established,related accept
//	     ct state new tcp flags != syn / ...         (adopt and pickup, as in prerouting)
//	     oifname "eth1" meta nfproto ipv4 jump ip_egress_out   `out`: output + forward
//	     meta mark M tcp dport != P reject with tcp reset      (input: message guards;
//	     meta mark M meta l4proto tcp reject with tcp reset     forward: see below)
//	   message  type nat hook prerouting priority dstnat - 1 (-101), policy accept
//	     meta mark M meta l4proto tcp redirect to :P  (one per refuse message text)
//	   refuse           TCP: reject with tcp reset; else icmpx admin-prohibited
//	   ip_check_in      one chain per applied ACL and direction (ip6_NAME_DIR
//	   ip_egress_out    for IPv6 lists): entries in seq order, implicit deny last
//	   quota_bytes      with quotas: counts the packets of admitted connections
//	                    (ct mark & 0x00ffffff = the quota's ID) into their quota
//	   ip_check_in_10         per entry in a map: its rules without MATCH
//	   ip_check_in_10_block   per entry with block-for: add the source to
//	                          ip_check_in_10_blocked, then refuse
//	   ip_check_in_10_src_3_res   per connlimit: the layers of keys with old
//	                          sessions (reached only by them)
//	   ip_check_in_10_log_connlimit   per logged entry and reason: rate-limited
//	                          NFLOG, then the verdict (compile_log.go)
//
// SetSize is Options.SetSize (aclagent --limit-set-size), by default 0:
// no size, like "-". An unsized set starts at about 1 KiB and grows on
// demand; once a rule adds to it the kernel caps it at UnsizedSetCap
// (65535) keys and lists it with that size. A declared size is the set's
// cap too, but the kernel preallocates the hash table for it, about
// 2 MiB at 65535 (setmem.go). Either way a full set fails closed (below).
// Ruleset.SetMemory estimates what the sets can take with every limit set
// full (table and elements at their cap), SetMemoryApplied what they take
// when created, and Compile refuses a configuration whose SetMemory is
// over Options.MaxSetMemory.
//
// Policy accept everywhere: traffic on interfaces without an access-group
// is not ours to judge, and other tables still see everything. Only the
// first packet of a connection reaches an ACL chain.
//
// # Ordering: why `in` is decided in prerouting
//
// An `in` ACL judges the first packet in prerouting at priority dstnat - 2
// (-102): after conntrack (-200, so `ct state` and `ct count` work) and
// other tables' mangle chains (-150, which may set packet marks), before
// any NAT (dstnat, -100), for connections to the host and routed ones
// alike, which is what `refuse message` needs: the refused connection
// must be steered to the agent's responder, and only a dstnat chain of the
// prerouting hook can still change where the first packet goes (by input
// or forward the routing decision is taken and the SYN would reach the
// real service or the next hop). It also means an `in` ACL sees the
// addresses as the client sent them, before DNAT (as an IOS inbound ACL).
// A refusal with a message sets the packet mark M (MessageMark + I for the
// I-th text) and accepts; our nat chain at dstnat - 1, right after (only
// another table's chain at exactly -102 or -101 could run in between and
// change the mark; none of the standard priorities is there) and before
// other tables' dstnat chains at -100 (the first NAT binding of a
// connection wins), redirects the marked SYN to port P of the responder
// (Options.MessagePort + I). The redirected connection is local: it passes
// input and never reaches the real service. It stays counted in the
// limit sets that its first packet was added to before the refusal (the
// refusing one's among them: `ct count` adds before it compares) only
// while the responder holds it: its line, then FIN, and a reset after
// agent.DefaultResponderHold if the client does not close; closed TCP
// flows are not counted. With no responder listening (agent down) the
// host's TCP stack resets the SYN. The guards fail closed: a marked packet
// that was not redirected to P (untracked or invalid, so NAT skipped it; or
// another table's NAT at a priority below ours bound it first) is reset in
// input, and a marked packet in forward (a redirected one is local) too.
//
// A permitted connection `return`s to the base chain instead of accepting,
// so that routed traffic is also judged by the `out` ACL of the outgoing
// interface in the forward chain. Other refusals are terminal (reject or
// drop).
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
// the order load-limit, connlimit, quota, rate (what a refused connection
// would spend lasts longer the later: compile_entry.go's checks); only the first counts M,
// later ones carry their limit's name as role. An entry has up to four
// connlimits, one per key (acl refuses two on one key), each with its own
// set S, gate and reservations, in acl's order (per-source, per-prefix
// from the longest, per-destination, total); the roles of all but the
// first end in their key ("gate-p24", "depth-p24", "connlimit-p24").
// `rate N per P burst B` is `update @S { KEY limit rate over N/P burst B
// packets }` on a set with timeout (KEY ip saddr, or meta nfproto for
// total; idle keys are forgotten once their bucket would be full); rate
// and quota sets are named by the entry's match, not its seq, so that a
// resequence keeps them (windowBase). Without burst, rate is a fixed window: `add @S { KEY limit
// rate over R/U burst N packets }` on a set whose timeout is one period P
// (KEY ip saddr, or meta nfproto for total); add does not renew an
// element's timeout, R/U refills one token per 2P, so a key gets N
// connections from its first one until the element expires. Each is
// followed by its own "rate-full" rule. A refusal by a limit also counts
// in the entry's counter for that kind of limit (NAME_refused_connlimit,
// _rate, _quota, _load). MATCH ends in `meta skuid UID` for `user`/`uid`;
// `log` replaces a verdict by `goto NAME_SEQ_log_REASON`, a chain of two
// rules: `limit rate 10/second burst 20 packets log prefix "REASON acl=...
// dir=... seq=N " group G` (NFLOG, Options.LogGroup; over the rate only
// the log line is lost) and the verdict itself (REASON: permit, deny, load,
// rate, rate-full, connlimit, connlimit-full; `_b` when the verdict goes on
// to the block chain). REFUSE for `refuse message` is `meta mark set M
// accept` (see Ordering).
// `block-for S`: over-limit refusals of the entry jump to a chain NAME_block
// that adds the source to the entry's own blocked set NAME_blocked with
// timeout S and refuses; `ct state new ip saddr @..._10_blocked jump
// refuse` at the top of the ACL chain refuses the entry's blocked sources
// on the whole ACL, as the entry refuses (`drop`, or `jump
// refuse_message_PORT` for its message to TCP). A full blocked set fails closed: the entry's flag set
// NAME_blocked_full is set for S instead, and meanwhile the ACL refuses
// every new connection (see compile_block.go). `load-limit` is a
// first check `meta nfproto @NAME_load_X` that the agent arms while the
// load is over the limit (compile_load.go). `quota` is a set per key with
// a timeout of one period whose elements carry `quota over N bytes`; the
// admitted connections carry the quota's ID in the low 24 bits of the ct
// mark and the base chains input, forward and output jump to the chain
// quota_bytes, which counts every packet of both directions
// (compile_quota.go). `time-range` copies the entry's rules once per UTC
// block of the range, with `meta day`, `meta hour` and `meta time` after
// MATCH (compile_time.go). `refuse message` on an ACL applied `out` is
// refused (only arriving connections are decided before NAT).
//
// KEY is `ip saddr` (per-source), `ip daddr` (per-destination), `ip saddr &
// MASK` (per-prefix) or `meta nfproto` (total: constant inside a
// single-family chain, so one element holds the shared count, and the count
// survives rule replacement because it lives in the set, not the rule).
//
// # Maps
//
// A run of at least Options.MapRun (DefaultMapRun, 8) entries in a row
// that no connection can match two of (acl.Entry.Overlaps) is one lookup
// in an interval verdict map instead of one or more rules per entry, so
// that a new connection costs the same through 10 entries or 50 000
// (compile_map.go):
//
//	map ip_check_in_map10_17 { type ipv4_addr . ipv4_addr . inet_proto . inet_service : verdict
//	                           flags interval
//	                           elements = { 10.0.0.1 . 10.0.0.2 . tcp . 22 : goto ip_check_in_10, ... } }
//	map ip_check_in_map10_17_c { type ipv4_addr . ipv4_addr . inet_proto . inet_service : counter
//	                           flags interval
//	                           elements = { 10.0.0.3 . 0.0.0.0/0 . tcp . 80 : "ip_check_in_20_matches", ... } }
//	chain ip_check_in          counter name ip saddr . ip daddr . meta l4proto . th dport map @ip_check_in_map10_17_c return
//	                           comment "acl=check dir=in map=10 counters"
//	                           ip saddr . ip daddr . meta l4proto . th dport vmap @ip_check_in_map10_17
//	                           comment "acl=check dir=in map=10"
//	chain ip_check_in_10       the entry's rules as above, without MATCH (`meta l4proto tcp` stays,
//	                           nft's context for `reject with tcp reset`)
//
// A plain permit (its chain would be `counter name C return` alone) has
// no chain: it is an element of the run's counter map, which names its
// counter; a hit counts it and leaves the list, a miss goes on to the
// verdict map of the run's other entries. Why: the kernel validates the
// whole table on every commit that adds a `goto` or `jump` element
// (35-53 ms at 50k entries), a counter element not (BENCHMARKS.md), and a
// 50k list has 50k chains fewer. google/nftables v0.3.0 has no object
// maps: wire encodes the set, its elements and the objref that reads the
// map (objrefMap), and read_objmap.go reads them back.
//
// The key holds the fields that some entry of the run constrains (ports
// need the protocol; at least two fields: the kernel's interval map for
// concatenations), each entry is one element of ranges (two for a port
// `neq`), and the element's verdict is `goto` the entry's chain, whose
// `return` leaves the list as a permit does, or `jump` for a deny with
// limits, which goes on to the next rule when under them. Because no two
// entries of a run can match one connection, the order inside a run
// decides nothing: a connection that matches none of its elements goes on
// to the rule after the lookup, as it would have passed the entries' rules.
// Entries with a time range, a socket owner or a wildcard address stay
// rules and end the run; a run with ports takes only tcp, udp and sctp
// entries (a port load past the end of a packet fails the lookup). Runs
// are bounded (maxIrregular, maxRunChecks) so that compiling stays
// linear, and a run longer than mapChunkMin (1024) entries is cut into
// chunks of about 2048, after entries that chunkEnd picks by their
// content: the kernel rebuilds a map's lookup tables on every commit that
// changes it, so a change of one entry of a 50k list rebuilds one map of
// ~2k elements, and the compile cache takes every other chunk back whole
// (cachedRun). Each chunk is one more lookup for a connection that passes
// it (a few hundred ns). The map's name holds its first seq and its key's fields: a run
// that starts elsewhere or needs another key is a new map; a change
// inside a run is an element change (apply_txn.go syncMaps). Renewals and
// the packet-tracer read a list through its maps (flat.go); the
// simulator evaluates the lookups (Sim.Ambiguous counts any lookup that
// found two elements, which Compile must never allow).
//
// # Never failing open
//
// When a set is full, the kernel cannot add a new key: the dynset
// expression breaks the rule, which then does not match (measured: without
// the "-full" rule a third source passes a size-2 set unlimited). The "-full"
// rule that follows refuses any matching connection whose key is not in the
// set, i.e. one that was not counted. A key that was counted is in the set,
// so the rule lets it through to the permit rule (or, for deny, to the next
// entry). An unsized set is full at UnsizedSetCap keys and refuses the
// same way (TestKernelUnsizedSetFullRefuses fills connlimit, rate and
// block-for sets to that cap).
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
// nobody changed meanwhile commits nothing for the same ruleset. The
// entries' chains of maps are not echoed (a change flushes and refills
// such a chain of a few rules), and a batch asks for one acknowledgement,
// its last message's (batch.go). A change inside a map is an element
// change (syncMaps). Right after an apply the Applier knows the gates of
// the limits it created closed and their reservation sets empty, and
// later the gates it opened, until anyone else commits (Applier.fresh,
// opened): the agent's counting reads none of them. Options.Cache gives
// an unchanged entry the rules of the previous compile
// (compile_cache.go), whose text is rendered once (Rule.String).
//
// Sim (sim.go) is a kernel-free model of these rule shapes: connection
// attempts in, outcomes and counters out, for packet-flow table tests.
package nft
