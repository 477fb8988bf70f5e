package nft

import (
	"github.com/google/nftables/expr"

	"github.com/slxsh/slxsh/internal/acl"
)

// `log`: the packets an entry refuses or permits go to an NFLOG group
// (Options.LogGroup), which the agent reads in its own network namespace;
// the kernel's `log` statement writes nothing from a non-initial namespace
// (nf_log_all_netns=0). A logged verdict is a goto to a log chain:
//
//	chain ip_check_in_10_log_connlimit {
//		limit rate 10/second burst 20 packets log prefix "connlimit acl=check dir=in seq=10 " group 1
//		reject with tcp reset
//	}
//
// The limit sits in the log rule, not in the deciding rule: over the rate
// the log rule does not match and the next rule still gives the verdict, so
// a flood loses log lines, never the refusal, and cannot drown the agent.

// DefaultLogGroup is the NFLOG group of `log` entries (Options.LogGroup).
const DefaultLogGroup = 1

// LogRate and LogBurst bound the events of one log chain (one entry and
// reason): at most LogRate per second after a burst of LogBurst.
const (
	LogRate  = 10
	LogBurst = 20
)

// RoleLog is the role of the log rule of a log chain.
const RoleLog = "log"

// LogChainName is the log chain of an entry's verdict for a reason:
// "ip_check_in_10_log_connlimit"; block is true for the over-limit
// refusals that go on to the block chain ("..._connlimit_b").
func LogChainName(r EntryRef, reason string, block bool) string {
	name := r.base() + "_log_" + reason
	if block {
		name += "_b"
	}
	return shorten(name)
}

// logged returns verdict unchanged for an entry without `log`; with it, a
// goto to the log chain that logs (rate-limited) and then gives verdict.
func (b *builder) logged(e *acl.Entry, ref EntryRef, reason string, verdict []Stmt) []Stmt {
	if !e.Log {
		return verdict
	}
	block := false
	if v, ok := verdict[len(verdict)-1].(*Verdict); ok && v.Kind == expr.VerdictJump && v.Chain == BlockChainName(ref) {
		block = true
	}
	return b.logChain(LogChainName(ref, reason, block), reason+" "+RuleComment(ref, "")+" ",
		&Rule{Comment: RuleComment(ref, RoleLog)}, &Rule{Comment: RuleComment(ref, reason), Stmts: standalone(e, verdict)})
}

// loggedBlocked is logged for the refusal of blocked sources at the top of
// an ACL chain, when an entry with block-for logs: prefix "blocked
// acl=NAME dir=DIR implicit-blocked", chain NAME_DIR_0_log_blocked, one per
// kind of refusal (blockedRefusal: NAME_DIR_0_log_blocked_drop, ...).
func (b *builder) loggedBlocked(a *acl.ACL, ref EntryRef, kind string, verdict []Stmt) []Stmt {
	if firstLoggedBlock(a) == nil {
		return verdict
	}
	name := RoleBlocked
	if kind != "" {
		name += "_" + kind
	}
	return b.logChain(LogChainName(ref, name, false), RoleBlocked+" "+RuleComment(ref, RoleBlocked)+" ",
		&Rule{Comment: RuleComment(ref, RoleBlocked) + " " + RoleLog}, &Rule{Comment: RuleComment(ref, RoleBlocked), Stmts: verdict})
}

func firstLoggedBlock(a *acl.ACL) *acl.Entry {
	for _, e := range a.Entries {
		if e.Log && e.BlockFor != nil {
			return e
		}
	}
	return nil
}

// logChain returns a goto to chain name, created on first use: the log
// rule (rate-limited NFLOG with prefix, comment of logRule), then final.
func (b *builder) logChain(name, prefix string, logRule, final *Rule) []Stmt {
	return b.extraChain(name, expr.VerdictGoto, func() *Chain {
		group := b.opt.LogGroup
		if group == 0 {
			group = DefaultLogGroup
		}
		logRule.Stmts = []Stmt{
			&RateUnder{RateOver{Rate: LogRate, Per: acl.Second, Burst: LogBurst}},
			&LogGroup{Prefix: prefix, Group: group},
		}
		return &Chain{Rules: []*Rule{logRule, final}}
	})
}
