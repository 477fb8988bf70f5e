package term

import (
	"golang.org/x/sys/unix"
)

// IsTerminal reports whether fd is a terminal.
func IsTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// Width returns the width of the terminal fd in cells, or 0 when unknown.
func Width(fd int) int {
	cols, _ := Size(fd)
	return cols
}

// Size returns the width and height of the terminal fd in cells and rows,
// 0 when unknown.
func Size(fd int) (cols, rows int) {
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	if err != nil {
		return 0, 0
	}
	return int(ws.Col), int(ws.Row)
}

// MakeInputRaw puts the terminal fd in raw mode for input only and returns a
// function that restores the previous mode.
//
// Why input only: the shell stays in this mode for the whole session, also
// while a command runs. The kernel must never echo type-ahead (automation
// clients send the next line before the prompt appears; with the usual
// per-line raw mode the tty would echo it in cooked mode and the editor would
// echo it again), while output keeps OPOST|ONLCR so that command output and
// the editor alike write "\n" and the terminal gets "\r\n".
func MakeInputRaw(fd int) (restore func() error, err error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	t := *old
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Oflag |= unix.OPOST | unix.ONLCR
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return nil, err
	}
	return func() error { return unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}
