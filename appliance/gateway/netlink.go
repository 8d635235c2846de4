package gateway

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// table is the gateway's table as the nftables package names it.
func table() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
}

// counterValue is a named counter's packets and bytes.
type counterValue struct{ Packets, Bytes uint64 }

// element is one learned address (with the device that learned it, in a segment's
// per-device set) and the lifetime left to give it.
type element struct {
	src     netip.Addr // invalid in the appliance's own sets
	addr    netip.Addr
	timeout time.Duration
}

// key is the element's set key: the destination, or the device's address and the
// destination concatenated.
func (e element) key() []byte {
	if e.src.IsValid() {
		return append(e.src.AsSlice(), e.addr.AsSlice()...)
	}
	return e.addr.AsSlice()
}

// queueRuleset adds to c the messages that replace the table with rs in one
// transaction: create it if missing, delete it, and build it again with its counters
// starting at counters (so re-applying does not reset them) and its learned sets
// holding learned (so re-applying does not forget what DNS answers taught).
func queueRuleset(c *nftables.Conn, rs *Ruleset, counters map[string]counterValue, learned map[string][]element) error {
	t := table()
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	for _, name := range rs.Counters {
		v := counters[name]
		c.AddObj(&nftables.CounterObj{Table: t, Name: name, Packets: v.Packets, Bytes: v.Bytes})
	}
	b := &binder{setIDs: map[string]uint32{}}
	for _, s := range rs.Sets {
		ns := nlSet(s)
		var elems []nftables.SetElement
		if s.Timeout {
			elems = timeoutElements(learned[s.Name])
		} else {
			elems = intervalElements(s.Ranges, s.V6)
		}
		if err := c.AddSet(ns, nil); err != nil {
			return fmt.Errorf("set %s: %w", s.Name, err)
		}
		if err := addElements(c, ns, elems); err != nil {
			return fmt.Errorf("set %s: %w", s.Name, err)
		}
		b.setIDs[s.Name] = ns.ID
	}
	chains := map[string]*nftables.Chain{}
	for _, ch := range rs.Chains {
		nc := &nftables.Chain{Name: ch.Name, Table: t}
		if ch.Hook != "" {
			nc.Type = nftables.ChainTypeFilter
			nc.Priority = nftables.ChainPriorityFilter
			switch ch.Hook {
			case "forward":
				nc.Hooknum = nftables.ChainHookForward
			case "output":
				nc.Hooknum = nftables.ChainHookOutput
			case "input":
				nc.Hooknum = nftables.ChainHookInput
			default:
				return fmt.Errorf("chain %s: unknown hook %q", ch.Name, ch.Hook)
			}
			policy := nftables.ChainPolicyDrop
			if ch.Policy == "accept" {
				policy = nftables.ChainPolicyAccept
			}
			nc.Policy = &policy
		}
		chains[ch.Name] = c.AddChain(nc)
	}
	for _, ch := range rs.Chains {
		for _, r := range ch.Rules {
			nr := &nftables.Rule{Table: t, Chain: chains[ch.Name]}
			for _, tm := range r.Terms {
				nr.Exprs = append(nr.Exprs, tm.exprs(b)...)
			}
			if r.Comment != "" {
				nr.UserData = userdata.AppendString(nil, userdata.TypeComment, r.Comment)
			}
			c.AddRule(nr)
		}
	}
	return nil
}

// nlSet is the nftables description of s (without elements).
func nlSet(s Set) *nftables.Set {
	ns := &nftables.Set{Table: table(), Name: s.Name, KeyType: nftables.TypeIPAddr}
	if s.V6 {
		ns.KeyType = nftables.TypeIP6Addr
	}
	if s.PerDevice {
		ns.KeyType = nftables.MustConcatSetType(ns.KeyType, ns.KeyType)
		ns.Concatenation = true
	}
	if s.Timeout {
		ns.HasTimeout = true
	} else {
		ns.Interval = true
	}
	return ns
}

func timeoutElements(es []element) []nftables.SetElement {
	out := make([]nftables.SetElement, 0, len(es))
	for _, e := range es {
		out = append(out, nftables.SetElement{Key: e.key(), Timeout: e.timeout})
	}
	return out
}

// intervalElements encodes ranges as nft does for an interval set: an interval end at
// the zero address (unless the first range starts there), then each range's first
// address and, as an interval end, the address after its last (none when the range
// reaches the top of the address space).
func intervalElements(rs []addrRange, v6 bool) []nftables.SetElement {
	if len(rs) == 0 {
		return nil
	}
	zero := netip.IPv4Unspecified()
	if v6 {
		zero = netip.IPv6Unspecified()
	}
	var out []nftables.SetElement
	if rs[0].from != zero {
		out = append(out, nftables.SetElement{Key: zero.AsSlice(), IntervalEnd: true})
	}
	for _, r := range rs {
		out = append(out, nftables.SetElement{Key: r.from.AsSlice()})
		if next := r.to.Next(); next.IsValid() {
			out = append(out, nftables.SetElement{Key: next.AsSlice(), IntervalEnd: true})
		}
	}
	return out
}

// queueElements adds to c the messages that write es into the learned set s: with
// refresh, each element is deleted first, since older kernels keep an existing
// element's old expiry when it is added again.
func queueElements(c *nftables.Conn, s Set, refresh bool, es []element) error {
	ns := nlSet(s)
	elems := timeoutElements(es)
	if refresh {
		for chunk := range slices.Chunk(elems, elementsPerMessage) {
			if err := c.SetDeleteElements(ns, chunk); err != nil {
				return err
			}
		}
	}
	return addElements(c, ns, elems)
}

// elementsPerMessage keeps a message's element list attribute, whose length is 16
// bits, well under 64KiB (an IPv6 element with its timeout takes about 50 bytes).
const elementsPerMessage = 512

// addElements queues elems in messages of at most elementsPerMessage elements; they
// are still one transaction.
func addElements(c *nftables.Conn, ns *nftables.Set, elems []nftables.SetElement) error {
	for chunk := range slices.Chunk(elems, elementsPerMessage) {
		if err := c.SetAddElements(ns, chunk); err != nil {
			return err
		}
	}
	return nil
}

// sendBuffer is the netlink socket's send buffer: a batch is one sendmsg, so it must
// fit whole (a re-apply carries every learned address). Like nft, we force it past
// wmem_max, which CAP_NET_ADMIN allows; it is a limit, not an allocation.
const sendBuffer = 32 << 20

func forceSendBuffer(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sendBuffer)
	})
	if err != nil {
		return err
	}
	return serr
}

// readCounters returns the table's named counters; a missing table is no error.
func readCounters(c *nftables.Conn) (map[string]counterValue, error) {
	// Ask for the table first: the object dump's error does not carry the errno.
	if _, err := c.ListTableOfFamily(TableName, nftables.TableFamilyINet); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, errTableMissing
		}
		return nil, err
	}
	objs, err := c.GetObjects(table())
	if err != nil {
		return nil, err
	}
	out := make(map[string]counterValue, len(objs))
	for _, o := range objs {
		if co, ok := o.(*nftables.CounterObj); ok {
			out[co.Name] = counterValue{Packets: co.Packets, Bytes: co.Bytes}
		}
	}
	return out, nil
}

// setSize counts the elements of the set called name (expired ones are not listed).
func setSize(c *nftables.Conn, s Set) (int, error) {
	elems, err := c.GetSetElements(nlSet(s))
	if err != nil {
		return 0, err
	}
	return len(elems), nil
}

// readLearned returns the elements the kernel's table holds now in the learned sets
// of rs, each with the lifetime it has left, so that an atomic re-apply (and a start
// that finds the table a previous run left) keeps them. A set the table lacks, or
// holds with another key type (an older ruleset), gives nothing.
func readLearned(c *nftables.Conn, rs *Ruleset, maxTimeout time.Duration) (map[string][]element, error) {
	sets, err := c.GetSets(table())
	if err != nil {
		return nil, fmt.Errorf("list sets: %w", err)
	}
	have := map[string]*nftables.Set{}
	for _, s := range sets {
		have[s.Name] = s
	}
	out := map[string][]element{}
	for _, s := range rs.Sets {
		ks, ok := have[s.Name]
		if !s.Timeout || !ok || ks.KeyType.Bytes != nlSet(s).KeyType.Bytes {
			continue
		}
		elems, err := c.GetSetElements(ks)
		if err != nil {
			return nil, fmt.Errorf("set %s: %w", s.Name, err)
		}
		for _, e := range elems {
			el, ok := decodeElement(s, e.Key)
			if !ok {
				continue
			}
			el.timeout = e.Expires
			if e.Timeout == 0 { // added by hand without a timeout
				el.timeout = maxTimeout
			}
			if el.timeout > 0 {
				out[s.Name] = append(out[s.Name], el)
			}
		}
	}
	return out, nil
}

// decodeElement reads a set key of s back into an element.
func decodeElement(s Set, key []byte) (element, bool) {
	n := 4
	if s.V6 {
		n = 16
	}
	var e element
	if s.PerDevice {
		if len(key) != 2*n {
			return element{}, false
		}
		e.src, _ = netip.AddrFromSlice(key[:n])
		key = key[n:]
	}
	if len(key) != n {
		return element{}, false
	}
	e.addr, _ = netip.AddrFromSlice(key)
	return e, true
}

var errTableMissing = errors.New("table inet " + TableName + " is missing")

// deleteTable removes the table; a table already gone is no error.
func deleteTable(c *nftables.Conn) error {
	c.DelTable(table())
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}
