// Package conntrack reads the kernel's connection tracking table and turns it
// into what slxsh reports and enforces about open sessions (issue 5):
//
//   - Kernel.Dump streams every flow (IPv4 and IPv6) of one network namespace
//     from ctnetlink into compact Flows (dump.go); marks are set through
//     github.com/ti-mo/conntrack.
//   - Attribute is pure: it places each flow under the ACL entry that decides
//     it (first match, as the compiler evaluates entries) and under the
//     entry's limit key, and gives per key session counts (Counts, for `show
//     access-list sessions`), the sessions a configuration would not admit
//     (Excess, for `connlimit existing-sessions reset`) and the sessions of
//     an ACL, entry or source (Select, for `clear access-list sessions`).
//   - End ends flows with a TCP reset to both ends: sockets of the host
//     itself at once through internal/sockdiag (SOCK_DESTROY), routed flows
//     on their next packet through the ct mark bit ResetMark, which the
//     compiled ruleset answers with a reset.
//   - Plan, Shrink and Reserver keep the layered reservation sets (named by
//     package layers) in step with the sessions that were open before a
//     limit existed; see reserve.go for why layers and not pre-created
//     elements.
//   - Tracker ties it together for the agent (agent.SessionTracker, plus
//     Prepare before each install and Run for the refresh loop).
//
// Conntrack records no interfaces. A Locator tells Attribute through which
// interface a flow came in or goes out; RouteLocator does it by route
// lookup, as reverse path filtering does (wrong under asymmetric routing).
// Without one, every flow is a candidate for every binding of an ACL: exact
// on a host whose ACLs are applied to every interface that carries the
// matching traffic, over-counting otherwise.
package conntrack
