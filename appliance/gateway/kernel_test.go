package gateway

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
)

// TestTextAndNetlinkAgree loads each policy's ruleset twice, into two namespaces: once
// as the dry-run text through Debian's nft, once as the netlink batch the gateway
// sends. nft's listing of the two tables must be identical, so the text an admin
// reviews is the ruleset the appliance applies.
func TestTextAndNetlinkAgree(t *testing.T) {
	files, _ := filepath.Glob("testdata/policies/*.yaml")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			rs := Build(policyFile(t, f))
			textNS, _ := newNetNS(t)
			mustNft(t, textNS, rs.Text(), "-f", "-")

			nlNS, fd := newNetNS(t)
			c, err := nftables.New(nftables.WithNetNSFd(fd))
			if err != nil {
				t.Fatal(err)
			}
			if err := queueRuleset(c, rs, nil, nil); err != nil {
				t.Fatal(err)
			}
			if err := c.Flush(); err != nil {
				t.Fatalf("apply over netlink: %v", err)
			}
			want := mustNft(t, textNS, "", "list", "table", "inet", TableName)
			got := mustNft(t, nlNS, "", "list", "table", "inet", TableName)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("nft list of the netlink-applied table differs from the text-applied one (-text +netlink):\n%s", diff)
			}
		})
	}
}
