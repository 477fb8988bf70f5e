package nft

import (
	"sort"
	"strconv"

	"github.com/google/nftables/expr"

	"github.com/slxsh/slxsh/internal/acl"
)

// `refuse message "TEXT"`: the kernel decides, the agent answers.
//
// The decision of an `in` ACL is taken in the prerouting filter chain at
// priority dstnat - 2 (-102), before any NAT (doc.go: Ordering). A refusal with a message marks the
// packet (MessageMark + index) and accepts it; the nat chain "message" at
// dstnat - 1 (before other tables' dstnat at -100, so no other NAT binds
// the connection first) redirects a marked first packet to the responder's
// port for that text on the host. Redirected, the connection is local: it
// reaches the agent's responder, never the real service, whether it was
// addressed to the host or routed through it. With no responder listening
// (agent down), the host's TCP stack answers the SYN with a reset.

// DefaultMessagePort is the first local port of the responder
// (Options.MessagePort): the I-th distinct message text (sorted) is served
// on DefaultMessagePort+I.
const DefaultMessagePort = 4421

// MaxMessages is how many distinct refuse message texts a configuration may
// apply (each takes a mark and a responder port).
const MaxMessages = 64

// MessageMark is the packet mark of a connection refused with the first
// message; the I-th message carries MessageMark+I. The mark is set on the
// refused first packet only, between our two prerouting chains.
const MessageMark = 0x534c0100

// ResponderMark is the socket mark (SO_MARK) of the responder's listeners.
// Only a process with CAP_NET_ADMIN (or, since Linux 5.17, CAP_NET_RAW)
// can set a socket mark, so a local user
// who listens on a message port (while the agent is down, or before it
// could) never gets the refused connections: the input guard resets a
// marked first packet whose listener lacks this mark.
const ResponderMark = 0x534c0200

// MessageChain is the nat chain that redirects refused connections to the
// responder.
const MessageChain = "message"

// Message is one refuse message text and where the kernel sends the
// connections it refuses with it.
type Message struct {
	Text string // without the CRLF
	Port uint16 // local TCP port of the responder
	Mark uint32 // packet mark set by the refusing rule
}

// messages assigns marks and ports to the refuse message texts of the
// applied ACLs, in text order so that equal configs give equal rulesets.
// An `out` binding of an ACL with a message is an error: only connections
// arriving on an interface are decided before NAT.
func (b *builder) messages(keys []chainKey) {
	seen := map[string]bool{}
	for _, k := range keys {
		a := b.findACL(k.fam, k.name)
		if a == nil {
			continue
		}
		for _, e := range a.Entries {
			if e.Refuse.Kind != acl.RefuseMessage {
				continue
			}
			if k.dir == acl.Out {
				b.errorf(entryPath(k, e).String(), "refuse message only applies in, and access-list %q is applied out", k.name)
				continue
			}
			seen[e.Refuse.Message] = true
		}
	}
	texts := make([]string, 0, len(seen))
	for t := range seen {
		texts = append(texts, t)
	}
	sort.Strings(texts)
	if len(texts) > MaxMessages {
		b.errorf("", "%d different refuse messages; at most %d", len(texts), MaxMessages)
		return
	}
	port := b.opt.MessagePort
	if port == 0 {
		port = DefaultMessagePort
	}
	for i, t := range texts {
		b.rs.Messages = append(b.rs.Messages, Message{Text: t, Port: port + uint16(i), Mark: MessageMark + uint32(i)})
	}
}

// message returns the message of text.
func (b *builder) message(text string) (Message, bool) {
	for _, m := range b.rs.Messages {
		if m.Text == text {
			return m, true
		}
	}
	return Message{}, false
}

// messageChain redirects each marked first packet to its responder port.
func messageChain(ms []Message) *Chain {
	ch := &Chain{Name: MessageChain, Hook: &Hook{Hook: "prerouting", Priority: PriorityMessage, Type: NATChain}}
	for _, m := range ms {
		ch.Rules = append(ch.Rules, &Rule{
			Comment: "message port " + strconv.Itoa(int(m.Port)),
			Stmts:   []Stmt{&MarkEq{Mark: m.Mark}, &L4Proto{Proto: acl.ProtoTCP}, &Redirect{Port: m.Port}},
		})
	}
	return ch
}

// messageRefusal marks a refused connection for the redirect and lets it
// on to the nat chain.
func (b *builder) messageRefusal(e *acl.Entry) []Stmt {
	m, ok := b.message(e.Refuse.Message)
	if !ok { // an out ACL: reported by messages
		return []Stmt{&Reject{TCPReset: true}}
	}
	return []Stmt{&MarkSet{Mark: m.Mark}, &Verdict{Kind: expr.VerdictAccept}}
}

// refuseMessage returns a jump to the chain, created on first use, that
// refuses a blocked source's connection with m: TCP is marked for the
// responder, the rest goes on to the refuse chain ("refuse_message_4421").
func (b *builder) refuseMessage(m Message) []Stmt {
	port := strconv.Itoa(int(m.Port))
	return b.extraChain(RefuseChain+"_message_"+port, expr.VerdictJump, func() *Chain {
		return &Chain{Rules: []*Rule{
			{Comment: "refuse message port " + port,
				Stmts: []Stmt{&L4Proto{Proto: acl.ProtoTCP}, &MarkSet{Mark: m.Mark}, &Verdict{Kind: expr.VerdictAccept}}},
			{Comment: "refuse", Stmts: []Stmt{&Verdict{Kind: expr.VerdictJump, Chain: RefuseChain}}},
		}}
	})
}

// entryAt is where an entry is, for the errors about it: made into
// words (`ip access-list extended check seq 10`) only for an error.
type entryAt struct {
	k chainKey
	e *acl.Entry
}

func entryPath(k chainKey, e *acl.Entry) entryAt { return entryAt{k, e} }

func (p entryAt) String() string {
	return p.k.fam.String() + " access-list extended " + p.k.name + " seq " + strconv.Itoa(p.e.Seq)
}

// RoleMessageGuard is the comment of the rules that reset a connection
// marked for the responder that did not reach it.
const RoleMessageGuard = "message-guard"

// addMessageGuards makes a refusal with a message fail closed: a marked
// packet that was not redirected to its responder port (NAT skipped it:
// untracked or invalid, or another table's NAT bound the connection first)
// is reset in input, and so is one that reaches a listener other than the
// responder's (ResponderMark), and a connection to a responder port that
// no refusal redirected (unmarked); every marked packet in forward is
// reset (a redirected one is local).
func addMessageGuards(chains []*Chain, ms []Message) {
	for _, ch := range chains {
		for _, m := range ms {
			comment := RoleMessageGuard + " port " + strconv.Itoa(int(m.Port))
			switch ch.Name {
			case "input":
				ch.Rules = append(ch.Rules,
					&Rule{Comment: comment, Stmts: []Stmt{&MarkEq{Mark: m.Mark},
						&Ports{Proto: acl.ProtoTCP, Dst: acl.PortMatch{Op: acl.PortNeq, Lo: m.Port}, Dep: true}, &Reject{TCPReset: true}}},
					&Rule{Comment: comment + " listener", Stmts: []Stmt{&MarkEq{Mark: m.Mark},
						&L4Proto{Proto: acl.ProtoTCP}, &SocketMarkNeq{Mark: ResponderMark}, &Reject{TCPReset: true}}},
					// Only refused connections reach the responder: one
					// made to its port directly would take one of its
					// slots (and get the line without being refused).
					&Rule{Comment: comment + " direct", Stmts: []Stmt{&MarkEq{Mark: m.Mark, Neq: true},
						&Ports{Proto: acl.ProtoTCP, Dst: acl.PortMatch{Op: acl.PortEq, Lo: m.Port}, Dep: true}, &Reject{TCPReset: true}}})
			case "forward":
				ch.Rules = append(ch.Rules, &Rule{Comment: comment, Stmts: []Stmt{&MarkEq{Mark: m.Mark},
					&L4Proto{Proto: acl.ProtoTCP}, &Reject{TCPReset: true}}})
			}
		}
	}
}
