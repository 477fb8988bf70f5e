package nft

import (
	"strconv"

	"github.com/slxsh/slxsh/internal/acl"
)

// load-limit X.YY: the kernel cannot see the load average, so the agent
// says when an entry is over its load limit by putting the family's nfproto
// into the entry's load set (LoadSetName), and takes it out when the load
// is back under. While the element is there the entry refuses:
//
//	MATCH ct state new meta nfproto @ip_check_in_10_load counter R REFUSE   (role "load")
//
// An empty set (also right after the set is created) lets the entry work
// as if it had no load limit.

// RoleLoad is the role of the rule that refuses while the load is too high.
const RoleLoad = "load"

// LoadSetName is the set whose element marks an entry as over its load
// limit: "ip_check_in_10_load_150" (the limit in hundredths is part of the
// name, so a changed limit starts from an empty set).
func LoadSetName(r EntryRef, hundredths int) string {
	return shorten(r.base() + "_load_" + strconv.Itoa(hundredths))
}

// loadCheck compiles `load-limit`.
func (b *builder) loadCheck(k chainKey, ref EntryRef, l *acl.LoadLimit) check {
	set := LoadSetName(ref, l.Hundredths)
	b.rs.Sets = append(b.rs.Sets, &Set{Name: set, Key: KeyNFProto, Size: 2, Kind: SetLoad, Entry: ref, KeyKind: acl.Total})
	return check{role: RoleLoad, reason: RoleLoad,
		over: []Stmt{&SetLookup{Set: set, Key: Key{Family: k.fam, Kind: acl.Total}}}}
}
