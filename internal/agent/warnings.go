package agent

import (
	"fmt"

	"github.com/slxsh/slxsh/internal/acl"
)

// The warnings a change gives the shell that made it.

// interfaceWarningsLocked lists interface blocks with access-groups whose
// Linux interface does not exist (yet): accepted, effective when it appears.
// Only bindings that differ from prev are listed (all when prev is nil), so
// that a shell is told once, when it binds, not at every later line.
func (a *Agent) interfaceWarningsLocked(prev *acl.Config) []string {
	var warns []string
	for _, ifc := range a.running.Interfaces {
		if ifc.Groups == [2][2]string{} {
			continue
		}
		if prev != nil {
			if old := prev.Interface(ifc.Kind, ifc.Name); old != nil && old.Groups == ifc.Groups {
				continue
			}
		}
		dev := a.opts.Resolve(ifc.Kind, ifc.Name)
		switch {
		case dev == "":
			warns = append(warns, fmt.Sprintf("%% Warning: interface %s is not mapped to a Linux interface (see --mgmt-interface, --interface-map)", ifc.Label()))
		case !a.opts.InterfaceExists(dev):
			if ifc.Kind == acl.IfLinux {
				warns = append(warns, fmt.Sprintf("%% Warning: interface %s does not exist; the access-group takes effect when it appears", dev))
			} else {
				warns = append(warns, fmt.Sprintf("%% Warning: interface %s (%s) does not exist; the access-group takes effect when it appears", ifc.Label(), dev))
			}
		}
	}
	return warns
}

// userWarningsLocked lists the entries new or changed since prev (all when
// prev is nil) of lists applied nowhere whose `user NAME` does not
// resolve: accepted, since the list compiles only once applied, but the
// shell that enters one must know that it cannot be applied as it is.
func (a *Agent) userWarningsLocked(prev *acl.Config) []string {
	if a.opts.LookupUser == nil {
		return nil
	}
	var warns []string
	looked := map[string]error{} // one lookup per name (NSS may ask a directory server)
	for _, l := range a.running.ACLs {
		if a.running.Applied(l.Family, l.Name) {
			continue // compiled: an unknown user was refused
		}
		var old *acl.ACL
		if prev != nil {
			old = prev.ACL(l.Family, l.Name)
		}
		for _, e := range l.Entries {
			if e.Owner == nil || e.Owner.User == "" {
				continue
			}
			if old != nil {
				if o := old.Entry(e.Seq); o != nil && o.Owner != nil && o.Owner.User == e.Owner.User {
					continue
				}
			}
			err, ok := looked[e.Owner.User]
			if !ok {
				_, err = a.opts.LookupUser(e.Owner.User)
				looked[e.Owner.User] = err
			}
			if err != nil {
				warns = append(warns, fmt.Sprintf("%% Warning: %s access-list extended %s seq %d: user %s: %v; the list cannot be applied until it resolves",
					l.Family, l.Name, e.Seq, e.Owner.User, err))
			}
		}
	}
	return warns
}
