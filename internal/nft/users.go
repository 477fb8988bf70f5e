package nft

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
)

// LookupUser resolves a user name to its uid with the host's user database.
// It is meant for Options.LookupUser; Compile itself reads nothing.
func LookupUser(name string) (uint32, error) {
	u, err := user.Lookup(name)
	var unknown user.UnknownUserError
	switch {
	case errors.As(err, &unknown):
		return 0, errors.New("no such user on this host")
	case err != nil:
		return 0, fmt.Errorf("cannot look it up: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("look up user %s: uid %q: %w", name, u.Uid, err)
	}
	return uint32(uid), nil
}
