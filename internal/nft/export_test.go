package nft

import "github.com/google/nftables"

// Generation returns the ruleset generation of the namespace a works in
// (for tests that check that nothing was committed).
func Generation(a *Applier) (uint32, error) {
	c, err := nftables.New(a.opts...)
	if err != nil {
		return 0, err
	}
	return generation(c)
}
