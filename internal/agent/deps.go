package agent

// TEMPORARY: bindings to internal/cli and internal/nft, filled in when those land.

import (
	"fmt"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/nft"
)

func applyLines(cfg *acl.Config, ctx, lines []string) (*acl.Config, error) {
	return nil, fmt.Errorf("not yet")
}

func parseConfig(name, text string) (*acl.Config, error) {
	return nil, fmt.Errorf("not yet")
}

// counterNames returns the named counters of an entry in a direction.
func counterNames(f acl.Family, name string, seq int, d acl.Direction) (matches, refused string) {
	return fmt.Sprintf("m_%s_%s_%d_%s", f, name, seq, d), fmt.Sprintf("r_%s_%s_%d_%s", f, name, seq, d)
}

func rulesetText(rs *nft.Ruleset) string { return fmt.Sprint(rs) }
