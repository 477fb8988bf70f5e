package cli

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/slxsh/slxsh/internal/acl"
)

// The ACL modes (conf-ipacl-ext, conf-ip6acl-ext): the entry grammar of
// SPEC §4.

// entryArgs are the arguments of an entry command.
type entryArgs struct {
	e        acl.Entry
	base     netip.Addr // address waiting for its wildcard
	err      error      // a value that parsed but does not combine
	start    int        // resequence
	step     int
	hasStart bool
	hasStep  bool
}

// lastConnlimit is the connlimit being parsed (the last one given).
func (a *entryArgs) lastConnlimit() *acl.Connlimit { return &a.e.Connlimits[len(a.e.Connlimits)-1] }

func aclCommands(f acl.Family) []*command {
	body := entryBody(f)
	remark := seq(kwSet("remark", "Add a comment line", func(a *entryArgs) { a.e.Action = acl.Remark }),
		lineArg("Comment text", func(a *entryArgs, s string) { a.e.Remark = s }))
	seqNum := intArg(1, 65535, "Sequence number", func(a *entryArgs, n int) { a.e.Seq = n })
	add := func(e *env, a *entryArgs) error {
		if a.err != nil {
			return a.err
		}
		e2 := a.e
		if e2.Action == acl.Remark && e2.Seq == 0 {
			return addRemark(e, &e2)
		}
		if err := placeRemarks(e, e2.Seq); err != nil {
			return err
		}
		if e2.Action == acl.Remark {
			return addNumberedRemark(e, &e2)
		}
		return e.cfg.AddEntry(e.frame.fam, e.frame.name, &e2)
	}
	return []*command{
		cfgCmd(seq(kw("seq", "Sequence number of the entry"), seqNum, alt(body, remark)), add),
		// IOS spells it without the keyword: `10 permit ...`, `no 10`.
		cfgCmd(seq(seqNum, alt(body, remark)), add),
		cfgCmd(body, add),
		cfgCmd(remark, add),
		cfgCmd(seq(kw("no", "Delete an entry"), kw("seq", "Delete the entry with this sequence number"), seqNum), deleteSeq),
		cfgCmd(seq(kw("no", "Delete an entry"), seqNum), deleteSeq),
		cfgCmd(seq(kw("no", "Delete an entry"), seqNum, alt(body, remark)), deleteSeqEntry),
		// `no` before a line of show running-config: the entry must be the
		// one at that seq.
		cfgCmd(seq(kw("no", "Delete an entry"), kw("seq", "Delete the entry with this sequence number"), seqNum, alt(body, remark)),
			deleteSeqEntry),
		cfgCmd(seq(kw("no", "Delete an entry"), alt(body, remark)),
			func(e *env, a *entryArgs) error {
				if a.err != nil {
					return a.err
				}
				e2 := a.e
				e.tx.had = nil // recounted: it may have been a remark
				return e.cfg.DeleteMatching(e.frame.fam, e.frame.name, &e2)
			}),
		cfgCmd(seq(kw("resequence", "Renumber the entries"),
			opt(intArg(1, 65535, "First sequence number (default 10)", func(a *entryArgs, n int) { a.start, a.hasStart = n, true }),
				opt(intArg(1, 65535, "Step (default 10)", func(a *entryArgs, n int) { a.step, a.hasStep = n, true })))),
			func(e *env, a *entryArgs) error {
				start, step := 10, 10
				if a.hasStart {
					start = a.start
				}
				if a.hasStep {
					step = a.step
				}
				return e.cfg.Resequence(e.frame.fam, e.frame.name, start, step)
			}),
	}
}

// deleteSeq is `no seq N`.
func deleteSeq(e *env, a *entryArgs) error {
	e.tx.had = nil // recounted: it may have been a remark
	return e.cfg.DeleteSeq(e.frame.fam, e.frame.name, a.e.Seq)
}

// deleteSeqEntry is `no seq N ENTRY`: it deletes entry N when N holds that
// entry.
func deleteSeqEntry(e *env, a *entryArgs) error {
	e.tx.had = nil
	if a.err != nil {
		return a.err
	}
	if l := e.cfg.ACL(e.frame.fam, e.frame.name); l != nil {
		if old := l.Entry(a.e.Seq); old != nil && !acl.SameEntry(old, &a.e) {
			return fmt.Errorf("seq %d of access-list %q is another entry: %s", a.e.Seq, e.frame.name, acl.FormatEntry(e.frame.fam, old))
		}
	}
	return e.cfg.DeleteSeq(e.frame.fam, e.frame.name, a.e.Seq)
}

// entryBody is `{permit|deny|hard-drop} PROTO SRC [PORTS] DST [PORTS] [OPTIONS]`.
func entryBody(f acl.Family) node {
	action := alt(
		kwSet("permit", "Admit matching connections (within the limits)", func(a *entryArgs) { a.e.Action = acl.Permit }),
		kwSet("deny", "Refuse matching connections", func(a *entryArgs) { a.e.Action = acl.Deny }),
		kwSet("hard-drop", "Drop matching connections silently", func(a *entryArgs) { a.e.Action = acl.HardDrop }),
	)
	src := addrNode(f, "Source", func(a *entryArgs) *acl.Addr { return &a.e.Src })
	dst := addrNode(f, "Destination", func(a *entryArgs) *acl.Addr { return &a.e.Dst })
	srcPorts := opt(portsNode("source", func(a *entryArgs) *acl.PortMatch { return &a.e.SrcPort }))
	dstPorts := opt(portsNode("destination", func(a *entryArgs) *acl.PortMatch { return &a.e.DstPort }))
	options := entryOptions(f)
	setProto := func(p int) func(*entryArgs) { return func(a *entryArgs) { a.e.Proto = p } }
	anyName, icmp := "ip", acl.ProtoICMP
	if f == acl.IPv6 {
		anyName, icmp = "ipv6", acl.ProtoICMPv6
	}
	withPorts := seq(src, srcPorts, dst, dstPorts, options)
	without := seq(src, dst, options)
	proto := alt(
		seq(kwSet(anyName, "Any protocol", setProto(acl.ProtoAny)), without),
		seq(kwSet("tcp", "TCP", setProto(acl.ProtoTCP)), withPorts),
		seq(kwSet("udp", "UDP", setProto(acl.ProtoUDP)), withPorts),
		seq(kwSet("sctp", "SCTP", setProto(acl.ProtoSCTP)), withPorts),
		seq(kwSet("icmp", "ICMP", setProto(icmp)), without),
		seq(intArg(0, 255, "IP protocol number", func(a *entryArgs, n int) { a.e.Proto = n }), withPorts),
	)
	return seq(action, proto)
}

// addrNode is `any | host ADDR | ADDR/LEN | ADDR WILDCARD`.
func addrNode(f acl.Family, what string, get func(*entryArgs) *acl.Addr) node {
	lw := strings.ToLower(what)
	return alt(
		kwSet("any", "Any "+lw+" address", func(a *entryArgs) { *get(a) = acl.AnyAddr }),
		seq(kw("host", "A single "+lw+" host"),
			addrArg(f, what+" host address", func(a *entryArgs, x netip.Addr) { *get(a) = acl.NewHostAddr(x) })),
		prefixArg(f, what+" prefix", func(a *entryArgs, p netip.Prefix) { *get(a) = acl.NewPrefixAddr(p) }),
		seq(addrArg(f, what+" address, then wildcard bits", func(a *entryArgs, x netip.Addr) { a.base = x }),
			param(addrName(f, false), what+" wildcard bits",
				func(s string) bool { _, ok := parseAddr(s, f); return ok },
				func(a *entryArgs, s string) {
					w, _ := parseAddr(s, f)
					addr, err := acl.NewWildcardAddr(a.base, w)
					if err != nil {
						a.err = err
					}
					*get(a) = addr
				})),
	)
}

// portsNode is `eq P | neq P | lt P | gt P | range P P`.
func portsNode(what string, get func(*entryArgs) *acl.PortMatch) node {
	lo := portArg(func(a *entryArgs, p uint16) { get(a).Lo = p })
	single := func(word, help string, op acl.PortOp) node {
		return seq(kwSet(word, help, func(a *entryArgs) { get(a).Op = op }), lo)
	}
	return alt(
		single("eq", "Match only this "+what+" port", acl.PortEq),
		single("neq", "Match every "+what+" port but this one", acl.PortNeq),
		single("lt", "Match "+what+" ports lower than this", acl.PortLt),
		single("gt", "Match "+what+" ports greater than this", acl.PortGt),
		seq(kwSet("range", "Match a range of "+what+" ports", func(a *entryArgs) { get(a).Op = acl.PortRange }),
			lo, portArg(func(a *entryArgs, p uint16) { get(a).Hi = p })),
	)
}

// keyKinds is `per-source | per-prefix LEN | per-destination | total`; LEN
// is 1-32 in an IPv4 list, 1-128 in an IPv6 one.
func keyKinds(f acl.Family, set func(a *entryArgs, k acl.KeyKind, plen int)) node {
	bits := int64(32)
	if f == acl.IPv6 {
		bits = 128
	}
	return alt(
		kwSet("per-source", "Count per source address (default)", func(a *entryArgs) { set(a, acl.PerSource, 0) }),
		seq(kwSet("per-prefix", "Count per source prefix", func(a *entryArgs) { set(a, acl.PerPrefix, 0) }),
			intArg(1, bits, "Prefix length", func(a *entryArgs, n int) { set(a, acl.PerPrefix, n) })),
		kwSet("per-destination", "Count per destination address", func(a *entryArgs) { set(a, acl.PerDestination, 0) }),
		kwSet("total", "One count for every client of the entry", func(a *entryArgs) { set(a, acl.Total, 0) }),
	)
}

func periods(set func(a *entryArgs, p acl.Period), withSecond bool) node {
	var n []node
	if withSecond {
		n = append(n, kwSet("second", "Per second", func(a *entryArgs) { set(a, acl.Second) }))
	}
	return alt(append(n,
		kwSet("minute", "Per minute", func(a *entryArgs) { set(a, acl.Minute) }),
		kwSet("hour", "Per hour", func(a *entryArgs) { set(a, acl.Hour) }),
		kwSet("day", "Per day", func(a *entryArgs) { set(a, acl.Day) }),
	)...)
}

// entryOptions are the options of SPEC §4, in any order, each once.
func entryOptions(f acl.Family) node {
	connlimit := seq(
		kwSet("connlimit", "Limit concurrent connections", func(a *entryArgs) { a.e.Connlimits = append(a.e.Connlimits, acl.Connlimit{}) }),
		intArg(0, acl.MaxConnlimit, "Maximum concurrent connections (0 refuses all)", func(a *entryArgs, n int) { a.lastConnlimit().N = n }),
		opt(keyKinds(f, func(a *entryArgs, k acl.KeyKind, plen int) { l := a.lastConnlimit(); l.Key, l.PrefixLen = k, plen })))
	rate := seq(
		kwSet("rate", "Limit new connections per period", func(a *entryArgs) { a.e.Rate = &acl.Rate{} }),
		intArg(1, acl.MaxRate, "New connections per period", func(a *entryArgs, n int) { a.e.Rate.N = n }),
		kw("per", "Period"),
		periods(func(a *entryArgs, p acl.Period) { a.e.Rate.Per = p }, true),
		opt(kw("burst", "Allow a burst above the rate"),
			intArg(1, acl.MaxBurst, "Burst size", func(a *entryArgs, n int) { a.e.Rate.Burst = n })),
		opt(alt(
			kwSet("per-source", "One rate per source address (default)", func(a *entryArgs) { a.e.Rate.Key = acl.PerSource }),
			kwSet("total", "One rate for every client of the entry", func(a *entryArgs) { a.e.Rate.Key = acl.Total }))))
	unit := func(w string, u acl.ByteUnit) node {
		return kwSet(w, "Quota in "+w, func(a *entryArgs) { a.e.Quota.Unit = u })
	}
	quota := seq(
		kwSet("quota", "Limit bytes per period", func(a *entryArgs) { a.e.Quota = &acl.Quota{} }),
		intArg(1, acl.MaxQuotaBytes, "Amount", func(a *entryArgs, n int) { a.e.Quota.N = uint64(n) }),
		alt(unit("bytes", acl.Bytes), unit("kbytes", acl.KBytes), unit("mbytes", acl.MBytes), unit("gbytes", acl.GBytes)),
		kw("per", "Period"),
		periods(func(a *entryArgs, p acl.Period) { a.e.Quota.Per = p }, false),
		opt(alt(
			kwSet("per-source", "One quota per source address", func(a *entryArgs) { a.e.Quota.PerSource = true }),
			kwSet("total", "One quota for every client of the entry (default)", func(a *entryArgs) { a.e.Quota.PerSource = false }))))
	blockFor := seq(
		kwSet("block-for", "Refuse a source that goes over a limit for a while", func(a *entryArgs) { a.e.BlockFor = &acl.BlockFor{} }),
		intArg(1, acl.MaxBlockFor, "Seconds", func(a *entryArgs, n int) { a.e.BlockFor.Seconds = n }),
		opt(kwSet("flush", "Also reset the source's open sessions", func(a *entryArgs) { a.e.BlockFor.Flush = true })))
	timeRange := seq(kw("time-range", "Apply only while a time range is active"),
		wordArg(timeRangeNames, "Time range name", func(a *entryArgs, s string) { a.e.TimeRange = s }))
	loadLimit := seq(kw("load-limit", "Refuse while the 1-minute load average is above this"),
		decimalArg("Load average", func(a *entryArgs, n int) { a.e.LoadLimit = &acl.LoadLimit{Hundredths: n} }))
	owner := alt(
		seq(kw("user", "Locally originated connections of a user"),
			param("USER", "User name", acl.ValidUserName, func(a *entryArgs, s string) { a.e.Owner = &acl.Owner{User: s} })),
		seq(kw("uid", "Locally originated connections of a user ID"),
			intArg(0, acl.MaxUID, "User ID", func(a *entryArgs, n int) { a.e.Owner = &acl.Owner{UID: n} })))
	refuse := seq(kw("refuse", "How refused connections are refused"),
		alt(
			kwSet("drop", "Drop silently", func(a *entryArgs) { a.e.Refuse = acl.Refuse{Kind: acl.RefuseDrop} }),
			kwSet("reset", "TCP reset / ICMP unreachable (default)", func(a *entryArgs) { a.e.Refuse = acl.Refuse{Kind: acl.RefuseReset} }),
			seq(kw("message", "Send a line of text, then close"),
				quotedArg("Text of the line", func(a *entryArgs, s string) { a.e.Refuse = acl.Refuse{Kind: acl.RefuseMessage, Message: s} }))))
	return anyOrder(many(connlimit), rate, quota, blockFor, timeRange, loadLimit, owner, refuse,
		kwSet("log", "Log refusals and matches", func(a *entryArgs) { a.e.Log = true }),
		kwSet("count", "Keep hit counters (always kept)", func(a *entryArgs) { a.e.Count = true }))
}

// addRemark adds a remark without a seq (after the list's last entry) and
// keeps its seq for the next line of the transaction (txnState).
func addRemark(e *env, r *acl.Entry) error {
	tx := e.tx
	tx.countRemarks(e)
	// The Nth remark T of a visit is the list's Nth remark T: a file sent
	// again adds none, one with a remark repeated adds each.
	if tx.seen[r.Remark]++; tx.seen[r.Remark] <= tx.had[r.Remark] {
		return nil
	}
	if err := e.cfg.AppendRemark(e.frame.fam, e.frame.name, r); err != nil {
		return err
	}
	tx.had[r.Remark]++
	if tx.list != e.frame {
		tx.remarks = nil
	}
	l := e.cfg.ACL(e.frame.fam, e.frame.name)
	tx.list, tx.kept = e.frame, true
	tx.remarks = append(tx.remarks, l.Entries[len(l.Entries)-1].Seq)
	return nil
}

// addNumberedRemark adds a remark with its seq (`seq 9 remark T`), and
// counts it among the visit's remarks T, as a following `remark T` without
// a seq is counted (addRemark): so `seq 9 remark T` then `remark T` is two
// remarks, the second time too.
func addNumberedRemark(e *env, r *acl.Entry) error {
	l := e.cfg.ACL(e.frame.fam, e.frame.name)
	before := len(l.Entries)
	if err := e.cfg.AddEntry(e.frame.fam, e.frame.name, r); err != nil {
		return err
	}
	tx := e.tx
	added := len(e.cfg.ACL(e.frame.fam, e.frame.name).Entries) > before
	if tx.visit == e.frame && tx.had != nil && added {
		tx.had[r.Remark]++ // counted already: the one just added too
	}
	tx.countRemarks(e)
	tx.seen[r.Remark]++
	return nil
}

// placeRemarks moves the remarks the lines just before added without a
// seq to the seqs right below seq, the explicit seq of the entry that
// follows them, when they would otherwise take it or come after it: the
// usual layout of a config written by hand or by IOS (`remark ...` then
// `seq 10 permit ...`) numbers the remark 10 and the entry collides. They
// stay where they are when there is no room below seq.
func placeRemarks(e *env, seq int) error {
	if e.tx == nil || len(e.tx.remarks) == 0 || e.tx.list != e.frame || seq == 0 || seq > e.tx.remarks[len(e.tx.remarks)-1] {
		return nil
	}
	rs := e.tx.remarks
	l := e.cfg.ACL(e.frame.fam, e.frame.name)
	first := seq - len(rs)
	if first < 1 {
		return nil
	}
	// Every seq from first up to seq, and up to the first remark, must be
	// free but for the remarks.
	for _, x := range l.Entries {
		if x.Seq >= first && x.Seq < max(seq, rs[0]) && !slices.Contains(rs, x.Seq) {
			return nil
		}
	}
	var moved []*acl.Entry
	for _, s := range rs {
		moved = append(moved, l.Entry(s))
	}
	for _, s := range rs {
		if err := e.cfg.DeleteSeq(e.frame.fam, e.frame.name, s); err != nil {
			return err
		}
	}
	for i, r := range moved {
		r2 := *r
		r2.Seq = first + i
		if err := e.cfg.AddEntry(e.frame.fam, e.frame.name, &r2); err != nil {
			return err
		}
	}
	e.tx.remarks = nil
	return nil
}
