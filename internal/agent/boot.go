package agent

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
)

// Config files the agent writes (the startup-config of `write memory`,
// the running-config state, the last good configuration) are framed so
// that one that ends early is told from a complete one: the first line is
// fileHeader and the last line is "end". On reading:
//
//   - a file that starts with fileHeader must end with an "end" line,
//     otherwise it was cut (a full disk, a copy that stopped, an editor
//     that crashed): it is not loaded;
//   - a file whose first line is fileHeader cut short is cut too;
//   - a file without fileHeader (written by an older agent, or by hand)
//     loads as before, with or without a final "end": older agents wrote
//     no marker, so truncation cannot be told in such a file; the next
//     `write memory` adds the frame;
//   - an empty file (no line but blanks) is never a configuration the
//     agent wrote (an empty running-config is written as the header and
//     "end") and is not loaded.
//
// "end" is also a command (return to exec mode), so a framed file still
// replays through slxsh -f, and so does the header, a comment.
//
// The two files the agent keeps of its running config (the state and the
// last good configuration, not the startup-config) also carry, as the
// comment line before "end", the generation of that config
// (appendStateTail): a count of the saves that changed it, which goes on
// across restarts. A restarted agent adopts the newer of the two
// (loadState).
const fileHeader = "! slxsh configuration written by aclagent; complete only if its last line is \"end\""

// generationPrefix starts the generation line of a state file.
const generationPrefix = "! generation "

// maxConfigFile and maxConfigLine bound what is read: a 65535-entry ACL
// is about 5 MB, its longest line far below 4 KiB.
const (
	maxConfigFile = 64 << 20
	maxConfigLine = 64 << 10
)

// appendFrame appends a config file's data to dst: the header line, the
// formatted config that body appends, and the "end" line.
func appendFrame(dst []byte, body func([]byte) []byte) []byte {
	return append(body(append(dst, fileHeader+"\n"...)), "end\n"...)
}

// appendStateTail ends a state file's data: its generation line and the
// "end" line.
func appendStateTail(dst []byte, gen uint64) []byte {
	dst = strconv.AppendUint(append(dst, generationPrefix...), gen, 10)
	return append(dst, "\nend\n"...)
}

// generationOf returns the generation of a state file's data; 0 when it
// has none (an older agent's file, one written by hand, or one cut short).
func generationOf(data []byte) uint64 {
	rest, ok := bytes.CutSuffix(bytes.TrimRight(data, " \t\r\n"), []byte("\nend"))
	if !ok {
		return 0
	}
	rest = bytes.TrimRight(rest, " \t\r")
	line := string(rest[bytes.LastIndexByte(rest, '\n')+1:])
	n, ok := strings.CutPrefix(strings.TrimSpace(line), generationPrefix)
	if !ok {
		return 0
	}
	gen, err := strconv.ParseUint(n, 10, 64)
	if err != nil {
		return 0
	}
	return gen
}

// FileError is a config file that could not be loaded, with the line it
// is about (1-based; 0 when the problem is not one line's).
type FileError struct {
	Path string
	Line int
	Msg  string // starts with "%"
	Text string // the line, when known
}

// Error returns "PATH:LINE: % ..." (or "PATH: % ..." without a line), as
// slxsh prints script errors.
func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return e.Path + ": " + e.Msg
}

// CheckText checks a config file's data for what makes it no
// configuration at all: NUL bytes and other binary, invalid UTF-8,
// overlong lines, an empty file, a framed file that ends early. It returns
// the text to parse, or a *FileError.
func CheckText(path string, data []byte) (string, error) {
	fail := func(line int, format string, args ...any) error {
		return &FileError{Path: path, Line: line, Msg: "% Error: " + fmt.Sprintf(format, args...)}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return "", fail(0, "the file is empty (not written by write memory, which always writes a header and an \"end\" line)")
	}
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	for i, l := range lines {
		switch {
		case len(l) > maxConfigLine:
			return "", fail(i+1, "line longer than %d bytes", maxConfigLine)
		case strings.IndexByte(l, 0) >= 0:
			return "", fail(i+1, "NUL byte: not a text file")
		case !utf8.ValidString(l):
			return "", fail(i+1, "not UTF-8 text")
		case strings.ContainsFunc(l, func(r rune) bool { return r < ' ' && r != '\t' }):
			return "", fail(i+1, "control character: not a text file")
		}
	}
	first := strings.TrimSpace(lines[0])
	if first == fileHeader || (len(lines) == 1 && strings.HasPrefix(fileHeader, first)) {
		last := len(lines)
		for last > 0 && strings.TrimSpace(lines[last-1]) == "" {
			last--
		}
		if strings.TrimSpace(lines[last-1]) != "end" {
			return "", fail(last, "the file ends before its \"end\" line: it was cut short (truncated), not loaded")
		}
	}
	return string(data), nil
}

// parseConfigFile parses, validates and compiles a config file's data, with
// every error placed at its line.
func (a *Agent) parseConfigFile(path string, data []byte) (*acl.Config, error) {
	text, err := CheckText(path, data)
	if err != nil {
		return nil, err
	}
	cfg, err := cli.ParseConfig(text)
	if err != nil {
		var le *cli.LineError
		if errors.As(err, &le) {
			return nil, &FileError{Path: path, Line: le.Line + 1, Msg: le.Error() + badLine(err), Text: le.Text}
		}
		return nil, &FileError{Path: path, Msg: userError(err)}
	}
	err = acl.Validate(cfg)
	if err == nil && a.opts.Compile != nil {
		_, err = a.opts.Compile(cfg)
	}
	if err != nil {
		return nil, placeError(path, text, err)
	}
	return cfg, nil
}

// placeError turns the first error of a config that parsed but does not
// validate or compile into a FileError at the line of the entry or block
// it names (acl.Error's Path, e.g. `ip access-list extended x seq 10`;
// cli.LineOf).
func placeError(path, text string, err error) *FileError {
	errs := FlattenErrors(err)
	first := errs[0]
	fe := &FileError{Path: path, Msg: userError(first)}
	if len(errs) > 1 {
		fe.Msg += fmt.Sprintf(" (and %d more)", len(errs)-1)
	}
	var ae *acl.Error
	if errors.As(first, &ae) && ae.Path != "" {
		if i, ok := cli.LineOf(acl.New(), cli.Txn{Lines: cli.ConfigLines(text)}, ae.Path); ok {
			fe.Line = i + 1
		}
	}
	return fe
}

// FlattenErrors lists the errors joined in err (errors.Join), one per
// problem.
func FlattenErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, FlattenErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// startupStatus is what became of the startup-config at start or at the
// last reload.
type startupStatus struct {
	err     error  // why it was not loaded; nil when it was (or there is none)
	when    string // "at start" or "at reload"
	instead string // what runs instead, for show startup-config
}

// Start loads the configuration and installs it. A restarted agent adopts
// the running config it saved in StatePath (same boot; or in LastGoodPath,
// when that is newer: loadState); otherwise it loads
// the startup-config; with neither it starts empty. Installing reconciles
// the kernel table in place: kept sets and counters keep their state, so a
// restart leaves no moment without limits.
//
// A startup-config that cannot be loaded (unreadable, damaged, cut short,
// invalid, refused by the kernel) never stops the agent: the error is
// logged with FILE:LINE, kept for show startup-config and the metrics, and
// the agent installs the last configuration it applied successfully
// (LastGoodPath), or, without one, leaves the table the kernel holds as it
// is, enforcing, until an administrator repairs the configuration. Start
// returns an error only in none of these cases.
func (a *Agent) Start() ([]string, error) {
	a.removeTemps()
	if cfg := a.loadState(); cfg != nil {
		a.startBaselines(true)
		warns, err := a.Replace(cfg, "adopt")
		if err == nil {
			a.resumeStartupStatus()
			return a.started0(warns), nil
		}
		a.log.Error("cannot install the adopted running-config; loading the startup-config", "err", err)
	}
	a.startBaselines(false)
	cfg, src, err := a.loadStartup()
	if err == nil {
		warns, err := a.Replace(cfg, src)
		if err == nil {
			a.mu.Lock()
			a.setStartupLocked(startupStatus{}) // a previous agent's is no longer
			a.mu.Unlock()
			return a.started0(warns), nil
		}
		err = &FileError{Path: a.opts.StartupPath, Msg: userError(err)}
	}
	a.startupFailed(err, "at start")
	if cfg := a.loadLastGood(); cfg != nil {
		warns, err := a.Replace(cfg, "last good configuration")
		if err == nil {
			a.setInstead("the last configuration applied successfully, from " + a.opts.LastGoodPath)
			return a.started0(warns), nil
		}
		a.log.Error("cannot install the last good configuration", "path", a.opts.LastGoodPath, "err", err)
	}
	a.setInstead("nothing was installed: the kernel keeps the table it holds (if any) as it is, enforcing")
	a.log.Warn("no configuration installed: the kernel keeps the table it holds as it is; repair the startup-config and reload (SIGHUP), or configure and write memory")
	return nil, nil
}

// started0 finishes a start that installed a configuration.
func (a *Agent) started0(warns []string) []string {
	a.mu.Lock()
	a.dropResetBaselinesLocked()
	a.mu.Unlock()
	if err := a.resumeRevert(); err != nil {
		a.log.Error("cannot resume the revert timer", "err", err)
	}
	return warns
}

// loadState returns the running config a previous agent saved (same
// boot), or nil, and has the generations go on from the newest file kept.
//
// That config is the state file's, unless the last good file is of a
// later generation: then the state's saves failed (a read-only or full
// /run; the shells were warned) and it holds an older config than the
// previous agent ran, which the last good file holds. Generations, not
// modification times: the last good file is written in the background,
// after the state (the one of a change can land after the state of the
// next), on another file system, and the clock may step.
func (a *Agent) loadState() *acl.Config {
	stateGen, held := fileGeneration(a.opts.StatePath)
	goodGen, _ := fileGeneration(a.opts.LastGoodPath)
	a.mu.Lock()
	a.gen = max(stateGen, goodGen)
	a.mu.Unlock()
	if held && goodGen > stateGen {
		a.log.Warn("the saved running-config is older than the last good configuration (its save failed): adopting the last good one",
			"path", a.opts.StatePath, "generation", stateGen, "last_good", a.opts.LastGoodPath, "last_good_generation", goodGen)
		cfg, _, err := a.loadConfigFile(a.opts.LastGoodPath)
		if err == nil {
			return cfg
		}
		a.log.Error("cannot load the last good configuration; adopting the older saved running-config", "path", a.opts.LastGoodPath, "err", err)
	}
	if a.opts.StatePath == "" {
		return nil
	}
	cfg, ok, err := a.loadConfigFile(a.opts.StatePath)
	switch {
	case err != nil:
		a.log.Warn("ignoring saved running-config", "path", a.opts.StatePath, "err", err)
	case ok:
		a.log.Info("adopting the running-config of the previous agent", "path", a.opts.StatePath)
		return cfg
	}
	return nil
}

// fileGeneration returns the generation of the state file at path; held
// is false when there is no readable file (or path is "").
func fileGeneration(path string) (gen uint64, held bool) {
	if path == "" {
		return 0, false
	}
	data, ok, err := readFileIfExists(path)
	if err != nil || !ok {
		return 0, false
	}
	return generationOf(data), true
}

// loadStartup loads the startup-config; a missing file is an empty config
// (a new host), unless the last good configuration kept is not empty (or
// cannot be loaded):
// then the file that went missing is not loaded, as reload does not load
// it, rather than opening the firewall (Start installs the last good one).
func (a *Agent) loadStartup() (*acl.Config, string, error) {
	if a.opts.StartupPath == "" {
		return acl.New(), "empty", nil
	}
	cfg, ok, err := a.loadConfigFile(a.opts.StartupPath)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		if a.opts.LastGoodPath != "" {
			// One that cannot be loaded is not taken for an empty one.
			if good, ok, err := a.loadConfigFile(a.opts.LastGoodPath); err != nil || (ok && !good.Empty()) {
				return nil, "", &FileError{Path: a.opts.StartupPath, Msg: "% Error: the file does not exist"}
			}
		}
		a.log.Info("no startup-config, starting empty", "path", a.opts.StartupPath)
		return acl.New(), "empty", nil
	}
	return cfg, "startup-config", nil
}

// loadLastGood returns the last configuration applied successfully, or nil.
func (a *Agent) loadLastGood() *acl.Config {
	if a.opts.LastGoodPath == "" {
		return nil
	}
	cfg, ok, err := a.loadConfigFile(a.opts.LastGoodPath)
	if err != nil {
		a.log.Error("cannot load the last good configuration", "path", a.opts.LastGoodPath, "err", err)
	}
	if !ok || err != nil {
		return nil
	}
	a.log.Warn("installing the last configuration applied successfully instead", "path", a.opts.LastGoodPath)
	return cfg
}

// loadConfigFile reads and checks a config file; ok is false when it does
// not exist. Errors are *FileError (FILE:LINE) where the file is readable.
func (a *Agent) loadConfigFile(path string) (cfg *acl.Config, ok bool, err error) {
	data, ok, err := readFileIfExists(path)
	if err != nil {
		return nil, false, &FileError{Path: path, Msg: "% Error: " + err.Error()}
	}
	if !ok {
		return nil, false, nil
	}
	cfg, err = a.parseConfigFile(path, data)
	return cfg, true, err
}

// Reload replaces the running config with the startup-config (SIGHUP). The
// applier changes only what differs, so unchanged entries keep their counts.
// A missing or invalid file keeps the running config as it is.
func (a *Agent) Reload() ([]string, error) {
	if a.opts.StartupPath == "" {
		return nil, fmt.Errorf("no startup-config file")
	}
	cfg, ok, err := a.loadConfigFile(a.opts.StartupPath)
	if err == nil && !ok {
		err = &FileError{Path: a.opts.StartupPath, Msg: "% Error: the file does not exist"}
	}
	if err == nil {
		var warns []string
		if warns, err = a.Replace(cfg, "reload"); err == nil {
			a.mu.Lock()
			a.setStartupLocked(startupStatus{})
			a.mu.Unlock()
			return warns, nil
		}
	}
	a.mu.Lock()
	a.failures.Add(1)
	a.mu.Unlock()
	a.startupFailed(err, "at reload")
	a.setInstead("the running config stayed as it was")
	return nil, fmt.Errorf("reload startup-config, running config kept: %w", err)
}

// startupFailed records and logs why the startup-config was not loaded.
func (a *Agent) startupFailed(err error, when string) {
	a.log.Error("startup-config not loaded", "when", when, "err", err)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.setStartupLocked(startupStatus{err: err, when: when})
}

func (a *Agent) setInstead(what string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.startup
	st.instead = what
	a.setStartupLocked(st)
}

// setStartupLocked records st, and keeps it beside the state for a
// restarted agent (which adopts the running config and loads no
// startup-config): the file that was not loaded stays one, for show
// startup-config and for write memory, which keeps it aside.
func (a *Agent) setStartupLocked(st startupStatus) {
	a.startup = st
	a.startupOK.Store(st.err == nil)
	var v any
	if st.err != nil {
		v = savedStartup{Err: st.err.Error(), When: st.when, Instead: st.instead}
	}
	a.keepStateJSON(a.startupStatusPath(), "startup-config status", v)
}

// savedStartup is a startupStatus as kept beside the state.
type savedStartup struct {
	Err, When, Instead string
}

func (a *Agent) startupStatusPath() string {
	if a.opts.StatePath == "" {
		return ""
	}
	return a.opts.StatePath + ".startup"
}

// resumeStartupStatus takes the status the previous agent kept (an
// adopting agent), when there is one.
func (a *Agent) resumeStartupStatus() {
	var st savedStartup
	if ok, err := readStateJSON(a.startupStatusPath(), &st); err != nil || !ok || st.Err == "" {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.startup = startupStatus{err: errors.New(st.Err), when: st.When, instead: st.Instead}
	a.startupOK.Store(false)
}

// StartupLoaded reports whether the startup-config (or the adopted
// running-config) was loaded at start and at the last reload.
func (a *Agent) StartupLoaded() bool { return a.startupOK.Load() }

// heldLocked reports whether the agent runs no configuration of its own
// because the startup-config was not loaded: the kernel's table is kept as
// found, and the first change replaces it.
func (a *Agent) heldLocked() bool { return a.ruleset == nil && a.startup.err != nil }

// heldWarning tells the administrator whose change replaced the table that
// the kernel held since a startup-config that was not loaded.
const heldWarning = "% Warning: the startup-config was not loaded (show startup-config): this change replaced the table the kernel held with the running-config"

// startupNote is what show startup-config prints before the file when it
// was not loaded: comment lines, so the output still replays.
func (a *Agent) startupNote() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.startup
	if st.err == nil {
		return ""
	}
	return fmt.Sprintf("! %% This startup-config was NOT loaded %s: %v\n! Running instead: %s.\n! Repair it and reload (SIGHUP), or configure and write memory.\n",
		st.when, st.err, st.instead)
}

// keepUnloaded copies a startup-config that was not loaded to PATH.not-loaded
// before write memory replaces it, so that nothing the user wrote there is
// lost: PATH.not-loaded.2, .3, ... when an earlier one is kept (up to
// maxKept). It reports the copy's path ("" when there was nothing to keep).
func (a *Agent) keepUnloaded() (string, error) {
	if a.StartupLoaded() {
		return "", nil
	}
	data, ok, err := readFileIfExists(a.opts.StartupPath)
	if err != nil || !ok {
		return "", nil // nothing readable to keep
	}
	keep := a.opts.StartupPath + ".not-loaded"
	for n := 2; ; n++ {
		old, held, err := readFileIfExists(keep)
		if err == nil && (!held || bytes.Equal(old, data)) {
			break // free, or this very file kept already
		}
		if n > maxKept {
			return keep, fmt.Errorf("%d copies of startup-configs that were not loaded are kept already; remove some", maxKept)
		}
		keep = fmt.Sprintf("%s.not-loaded.%d", a.opts.StartupPath, n)
	}
	return keep, writeFileAtomic(keep, data, 0o600)
}

// maxKept bounds the copies keepUnloaded makes.
const maxKept = 100
