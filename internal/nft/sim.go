package nft

import (
	"net/netip"

	"github.com/google/nftables/expr"

	"github.com/slxsh/slxsh/internal/acl"
)

// Sim evaluates a compiled ruleset against connection attempts without a
// kernel: a model of what the kernel does with our statements, for tests of
// the compiled semantics (who gets in, who is refused and how, what the
// counters say). It keeps the sets' per-key counts of open connections.
// Token-bucket rates are never exceeded in the model, fixed-window rates
// count their window's connections, and timeouts never expire.
type Sim struct {
	rs     *Ruleset
	chains map[string]*Chain
	sets   map[string]*simSet
	maps   map[string]*VMap
	// Ambiguous counts lookups in which more than one element of a
	// classification map matched: the kernel could pick either, so
	// Compile must never make such a map.
	Ambiguous int
	counters  map[string]int
	conns     map[int][]*simElem // open connection -> the elements counting it
	next      int
}

type simSet struct {
	size  int
	elems map[string]*simElem
}

type simElem struct {
	set   *simSet
	key   string
	over  int // ct count over; 0 for plain members
	count int
}

// Flow is the first packet of a connection, seen at one hook.
type Flow struct {
	Hook         string // "input", "forward" or "output"
	IIF, OIF     string
	Src, Dst     netip.Addr
	Proto        uint8
	SPort, DPort uint16
	UID          uint32 // owner of the local socket (output)
}

// Outcome is what happened to a connection attempt.
type Outcome int

// Outcomes of Sim.Connect.
const (
	Admitted    Outcome = iota
	Reset               // reject with tcp reset
	Unreachable         // reject with icmpx admin-prohibited
	Dropped
	Messaged // marked for the refuse message responder
)

// String returns the outcome in words.
func (o Outcome) String() string {
	return [...]string{"admitted", "reset", "unreachable", "dropped", "message"}[o]
}

// NewSim returns a simulator with empty sets and zero counters.
func NewSim(rs *Ruleset) *Sim {
	s := &Sim{rs: rs, chains: map[string]*Chain{}, sets: map[string]*simSet{},
		counters: map[string]int{}, conns: map[int][]*simElem{}, maps: map[string]*VMap{}}
	for _, c := range rs.Chains {
		s.chains[c.Name] = c
	}
	for _, set := range rs.Sets {
		s.sets[set.Name] = &simSet{size: set.Capacity(), elems: map[string]*simElem{}}
		if set.Map != nil {
			s.maps[set.Name] = set.Map
		}
		switch set.Kind {
		case SetGate:
			s.AddElement(set.Name, nfprotoName(set.Entry.Family)) // created closed, as by Apply
		case SetGrace:
			s.AddElement(set.Name, "ipv4")
			s.AddElement(set.Name, "ipv6")
		}
	}
	return s
}

// NewSimOpen is NewSim with every gate open, as after the agent counted
// the sessions open when the limits were created (none, in a simulation).
func NewSimOpen(rs *Ruleset) *Sim {
	s := NewSim(rs)
	for _, set := range rs.Sets {
		if set.Kind == SetGate {
			s.OpenGate(set.Limit)
		}
	}
	return s
}

// Counter returns the value (packets) of a named counter.
func (s *Sim) Counter(name string) int { return s.counters[name] }

// AddElement puts a key into a set as the agent does ("10.0.0.1",
// "10.0.0.0/24" for per-prefix keys, "ipv4"/"ipv6" for nf_proto sets).
func (s *Sim) AddElement(set, key string) {
	if st := s.sets[set]; st != nil && st.elems[key] == nil {
		st.elems[key] = &simElem{set: st, key: key}
	}
}

// Reserve holds a key of a limit set at a depth, as the agent's
// WriteReservations does.
func (s *Sim) Reserve(r Reservation) {
	for _, set := range s.rs.Sets {
		if set.Name == r.Set {
			for _, m := range memberSets(set, r.Depth) {
				s.AddElement(m, r.Key)
			}
		}
	}
}

// OpenGate deletes the element of a limit set's gate (Apply creates it
// closed: see NewSim).
func (s *Sim) OpenGate(limit string) {
	if g := s.sets[GateSetName(limit)]; g != nil {
		clear(g.elems)
	}
}

// Connect evaluates the first packet of a connection at its hook. An
// admitted connection stays open (and counted) until Close; its id is
// returned.
func (s *Sim) Connect(f Flow) (Outcome, int) {
	ev := &simEval{sim: s, f: f}
	out := Admitted
	for _, hook := range simHooks(f.Hook) {
		if out = ev.chain(s.chains[hook], 0); out != Admitted {
			break
		}
	}
	if out != Admitted {
		for _, e := range ev.added {
			if e.count == 0 && e.over > 0 {
				delete(e.set.elems, e.key)
			}
		}
		return out, 0
	}
	s.next++
	for _, e := range ev.added {
		e.count++
	}
	s.conns[s.next] = ev.added
	return Admitted, s.next
}

// simHooks are the base chains a connection's first packet passes: an
// arriving one (input, forward) passes prerouting first.
func simHooks(hook string) []string {
	if hook == "input" || hook == "forward" {
		return []string{"prerouting", hook}
	}
	return []string{hook}
}

// Close ends an admitted connection; counting elements that reach zero are
// removed, as the kernel's garbage collection does.
func (s *Sim) Close(id int) {
	for _, e := range s.conns[id] {
		e.count--
		if e.count == 0 {
			delete(e.set.elems, e.key)
		}
	}
	delete(s.conns, id)
}

// simEval is one packet's walk through the chains.
type simEval struct {
	sim    *Sim
	f      Flow
	added  []*simElem // elements this connection was added to
	marked bool       // a refuse message mark was set
}

// result of a chain: a final outcome, or "return to the caller".
const simReturn Outcome = -1

func (ev *simEval) chain(c *Chain, depth int) Outcome {
	if c == nil || depth > 16+len(ev.sim.rs.Chains) {
		return Admitted
	}
	for _, r := range c.Rules {
		if out, done := ev.rule(r, depth); done {
			if out == simReturn {
				break
			}
			return out
		}
	}
	if c.Hook != nil {
		return Admitted // policy accept
	}
	return simReturn
}

// rule evaluates the statements in order; done is false when a statement
// did not match or the rule ended without a verdict.
func (ev *simEval) rule(r *Rule, depth int) (Outcome, bool) {
	for _, st := range r.Stmts {
		switch st := st.(type) {
		case *Verdict:
			switch st.Kind {
			case expr.VerdictAccept:
				if ev.marked {
					return Messaged, true
				}
				return Admitted, true
			case expr.VerdictDrop:
				return Dropped, true
			case expr.VerdictReturn:
				return simReturn, true
			case expr.VerdictJump, expr.VerdictGoto:
				if out := ev.chain(ev.sim.chains[st.Chain], depth+1); out != simReturn {
					return out, true
				}
				if st.Kind == expr.VerdictGoto {
					return simReturn, true
				}
			}
		case *Reject:
			if st.TCPReset {
				return Reset, true
			}
			return Unreachable, true
		case *CounterRef:
			ev.sim.counters[st.Name]++
		case *MarkSet:
			ev.marked = true
		case *MapLookup:
			v := ev.lookup(st)
			if v == nil {
				return 0, false
			}
			return ev.rule(&Rule{Stmts: v}, depth)
		default:
			if !ev.match(st) {
				return 0, false
			}
		}
	}
	return 0, false
}

func (ev *simEval) fam() acl.Family {
	if ev.f.Src.Is4() {
		return acl.IPv4
	}
	return acl.IPv6
}

// match evaluates a non-terminal statement.
func (ev *simEval) match(st Stmt) bool {
	f := ev.f
	switch st := st.(type) {
	case *Iface:
		if st.Out {
			return f.OIF == st.Name
		}
		return f.IIF == st.Name
	case *NFProto:
		return ev.fam() == st.Family
	case *L4Proto:
		return f.Proto == st.Proto
	case *CtState:
		return st.States&CtNew != 0
	case *CtMarkBit:
		return false
	case *TCPNoRST:
		return f.Proto == acl.ProtoTCP
	case *TCPSYN:
		return f.Proto == acl.ProtoTCP && !st.Not // the model's first packets are SYNs
	case *Addr:
		a := f.Src
		if st.Dst {
			a = f.Dst
		}
		return ev.fam() == st.Family && st.Match.Contains(a)
	case *Ports:
		return f.Proto == st.Proto && st.Src.Matches(f.SPort) && st.Dst.Matches(f.DPort)
	case *SkUID:
		return f.Hook == "output" && f.UID == st.UID
	case *ICMPv6Types:
		return false // the model has no ICMPv6 messages
	case *QuotaAdd:
		ev.member(st.Set, ev.key(st.Key)) // never over in the model; a full set: the next rule refuses
		return false
	case *CtMarkEq:
		return (st.Value == 0) != st.Neq // new connections carry no mark in the model
	case *CtMarkID, *CtDirection:
		return true
	case *SocketMarkNeq:
		return false // the model's responder is the agent's
	case *MetaDay, *MetaHour, *MetaTime:
		return true // the model has no clock: time ranges are active
	case *LogGroup, *RateUnder:
		return true // logging; the model never goes over the log rate
	case *RateOver:
		return false // never over in the model
	case *RateUpdate:
		key := ev.key(st.Key)
		ev.member(st.Set, key) // a full set: the next rule refuses
		e := ev.set(st.Set).elems[key]
		if !st.Window || e == nil {
			return false
		}
		e.count++ // a fixed window that never ends in the model
		return e.count > st.Rate.Burst
	case *SetLookup:
		_, in := ev.set(st.Set).elems[ev.key(st.Key)]
		return in != st.Invert
	case *ConnlimitAdd:
		return ev.connlimit(st)
	case *BlockAdd:
		ev.member(st.Set, f.Src.String())
		return true
	}
	return false
}

// member adds a plain element to a set that has room.
func (ev *simEval) member(set, key string) {
	if s := ev.set(set); s.elems[key] == nil && !s.full() {
		s.elems[key] = &simElem{set: s, key: key}
	}
}

// full tells whether a set has no room (an unsized one holds UnsizedSetCap
// keys, as the kernel caps a set that a rule adds to).
func (s *simSet) full() bool { return len(s.elems) >= s.size }

func (ev *simEval) set(name string) *simSet {
	if s := ev.sim.sets[name]; s != nil {
		return s
	}
	return &simSet{size: UnsizedSetCap, elems: map[string]*simElem{}}
}

// connlimit adds the connection to its key's element (creating it with the
// statement's limit unless the set is full) and matches when the count,
// this connection included, is over the element's limit.
func (ev *simEval) connlimit(st *ConnlimitAdd) bool {
	set := ev.set(st.Set)
	k := ev.key(st.Key)
	e := set.elems[k]
	if e == nil {
		if set.full() {
			return false // the dynset add fails: the rule breaks
		}
		e = &simElem{set: set, key: k, over: st.Over}
		set.elems[k] = e
	}
	ev.added = append(ev.added, e)
	return e.count+1 > e.over
}

// key renders the packet's key as AddElement spells it.
func (ev *simEval) key(k Key) string {
	switch k.Kind {
	case acl.Total:
		if ev.fam() == acl.IPv6 {
			return "ipv6"
		}
		return "ipv4"
	case acl.PerDestination:
		return ev.f.Dst.String()
	case acl.PerPrefix:
		p, _ := ev.f.Src.Prefix(k.PrefixLen)
		return p.String()
	}
	return ev.f.Src.String()
}

// lookup finds the element of a classification map that the packet
// matches, as the statements it stands for (nil: none): its verdict, or
// its counter and the lookup rule's return.
func (ev *simEval) lookup(st *MapLookup) []Stmt {
	m := ev.sim.maps[st.Set]
	if m == nil || ev.fam() != m.Family {
		return nil
	}
	var hit *MapElem
	for i := range m.Elems {
		if m.Elems[i].matches(ev.f) {
			if hit != nil {
				ev.sim.Ambiguous++
				continue
			}
			hit = &m.Elems[i]
		}
	}
	if hit == nil {
		return nil
	}
	switch {
	case m.Counters != st.Counters:
		return nil // not what the kernel would take for this lookup
	case m.Counters:
		return []Stmt{&CounterRef{Name: hit.Counter}, &Verdict{Kind: expr.VerdictReturn}}
	case hit.Jump:
		return []Stmt{&Verdict{Kind: expr.VerdictJump, Chain: hit.Chain}}
	}
	return []Stmt{&Verdict{Kind: expr.VerdictGoto, Chain: hit.Chain}}
}
