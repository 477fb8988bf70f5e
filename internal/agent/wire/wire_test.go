package wire

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/slxsh/slxsh/internal/cli"
)

func TestSocketPath(t *testing.T) {
	t.Setenv("SLXSH_SOCKET", "")
	if got := SocketPath(""); got != DefaultSocket {
		t.Errorf("default: %q", got)
	}
	t.Setenv("SLXSH_SOCKET", "/tmp/env.sock")
	if got := SocketPath(""); got != "/tmp/env.sock" {
		t.Errorf("env: %q", got)
	}
	if got := SocketPath("/tmp/flag.sock"); got != "/tmp/flag.sock" {
		t.Errorf("flag over env: %q", got)
	}
}

func TestLineErrorRoundTrip(t *testing.T) {
	le := &cli.LineError{Line: 3, Text: "seq 20 permitt ip any any", Kind: cli.ErrInvalid, Col: 7}
	data, err := json.Marshal(&Response{Version: ProtocolVersion, Error: le.Error(), LineError: le})
	if err != nil {
		t.Fatal(err)
	}
	var back Response
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.LineError, le) || back.Error != "% Invalid input detected at '^' marker." {
		t.Errorf("round trip: %+v", back)
	}
}
