package agent

// ProtocolVersion is the version of the wire protocol. A request carrying
// another version is refused, so that a shell and an agent from different
// builds fail clearly instead of misreading each other.
const ProtocolVersion = 1

// Op names a request.
type Op string

// Requests. OpTxn, OpClearCounters and OpWriteMemory change state and need
// an administrator; the others may be sent by anyone who can reach the socket.
const (
	OpTxn           Op = "txn"            // apply a configuration transaction
	OpShow          Op = "show"           // render a show command
	OpClearCounters Op = "clear-counters" // clear access-list counters
	OpWriteMemory   Op = "write-memory"   // copy running-config startup-config
)

// Request is one message from the shell to the agent. Exactly the field
// that belongs to Op is set.
type Request struct {
	Version int           `json:"version"`
	Op      Op            `json:"op"`
	Txn     *TxnRequest   `json:"txn,omitempty"`
	Show    *ShowRequest  `json:"show,omitempty"`
	Clear   *ClearRequest `json:"clear,omitempty"`
}

// TxnRequest is one configuration transaction: Lines are applied in order
// starting in the mode that Context describes (the lines that entered it,
// e.g. ["ip access-list extended check"]); all of them apply, or none.
type TxnRequest struct {
	Context []string `json:"context,omitempty"`
	Lines   []string `json:"lines"`
}

// ShowKind names what a show request asks for.
type ShowKind string

// Show requests.
const (
	ShowRunning     ShowKind = "running-config"  // text of the running config
	ShowStartup     ShowKind = "startup-config"  // text of the startup config
	ShowACL         ShowKind = "access-list"     // entries with counters; Name, or all when ""
	ShowACLIf       ShowKind = "access-list-if"  // the ACL on Interface in Direction
	ShowAccessGroup ShowKind = "ip-access-group" // every binding
	ShowNftables    ShowKind = "nftables"        // the compiled ruleset as nft text
	ShowVersion     ShowKind = "version"         // product version and kernel
)

// ShowRequest asks for one show command's output.
type ShowRequest struct {
	Kind      ShowKind `json:"kind"`
	Family    string   `json:"family,omitempty"`    // "ip" or "ipv6"; "" means ip
	Name      string   `json:"name,omitempty"`      // ACL name for ShowACL
	Interface string   `json:"interface,omitempty"` // ShowACLIf: as typed, e.g. "management 0", "ethernet 0/1", "eth1"
	Direction string   `json:"direction,omitempty"` // ShowACLIf: "in" or "out"
}

// ClearRequest is `clear access-list counters [ip NAME]`.
type ClearRequest struct {
	Family string `json:"family,omitempty"` // "ip" or "ipv6"
	Name   string `json:"name,omitempty"`   // "" clears every list
}

// Response is the agent's answer to one Request.
type Response struct {
	Version  int      `json:"version"`
	Error    string   `json:"error,omitempty"`    // user-facing, starts with "%"; "" on success
	ErrLine  int      `json:"err_line,omitempty"` // TxnRequest line (1-based) the error is about; 0 when none
	ErrCol   int      `json:"err_col,omitempty"`  // token index for the caret, when known
	Warnings []string `json:"warnings,omitempty"` // user-facing lines, each starting with "%"
	Text     string   `json:"text,omitempty"`     // show output
}
