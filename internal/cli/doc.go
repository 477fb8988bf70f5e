// Package cli is the slxsh command language and shell logic, without
// terminal I/O.
//
// Commands are declared as data, per mode (exec.go, global.go, aclmode.go):
// a tree of keywords and typed parameters, each token with one line of
// help, and a handler that receives a typed argument struct. The engine
// (engine.go) matches lines token by token with unique-prefix abbreviation
// and tells invalid input (with the index of the bad token, for the caret),
// ambiguous and incomplete commands apart; it also answers `?` help and
// TAB completion at any position.
//
// ApplyLines is the single place where configuration text becomes
// configuration: the shell, scripts, config files (ParseConfig) and the
// agent all replay lines through it. Session is the shell that
// cmd/slxsh drives; it talks to a Backend (the agent, or NewMemoryBackend).
//
// What the shell asks a backend is declared once per operation in ops.go:
// an Op value with its name, whether it changes state, and typed argument
// and result. The shell calls it with Call; the agent's server and the
// memory backend implement it with one Handle line each. Adding a show
// command that needs the agent is: the Op, the agent's Handle line, and
// the command in the exec table (plus its golden session). Host commands
// (host.go) need no backend at all.
package cli
