package conntrack

import "fmt"

// Fake is an in-memory Table for unit tests of code that reads and marks
// sessions (the agent's), so that they need no kernel.
type Fake struct {
	Flows []Flow
}

// Dump returns a copy of the flows.
func (f *Fake) Dump() ([]Flow, error) {
	return append([]Flow(nil), f.Flows...), nil
}

// SetMark sets the mark of the flow with the same original tuple.
func (f *Fake) SetMark(fl Flow, mark uint32) error {
	for i := range f.Flows {
		g := &f.Flows[i]
		if g.Proto == fl.Proto && g.Src == fl.Src && g.Dst == fl.Dst &&
			g.SrcPort == fl.SrcPort && g.DstPort == fl.DstPort {
			g.Mark = mark
			return nil
		}
	}
	return fmt.Errorf("mark %s: no such flow", fl)
}
