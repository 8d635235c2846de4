package passive

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// Filter returns the classic BPF program a Capture attaches to its socket.
// It accepts ARP and LLDP frames, and UDP over IPv4 (first fragments only)
// or IPv6 (no extension headers) from or to the ports of DHCPv4, the
// NetBIOS name service, SSDP and mDNS, and IPv6 neighbour solicitations and
// advertisements (no extension headers), up to snaplen bytes each; the kernel
// drops everything else before it is copied to the appliance.
func Filter(snaplen uint32) []bpf.Instruction {
	ports := []uint32{portDHCPServer, portDHCPClient, portNetBIOSNS, portSSDP, portMDNS}
	var a asm
	a.add(bpf.LoadAbsolute{Off: 12, Size: 2}) // EtherType
	a.jump(bpf.JumpEqual, 0x0806, "accept", "")
	a.jump(bpf.JumpEqual, 0x88cc, "accept", "")
	a.jump(bpf.JumpEqual, 0x0800, "ipv4", "")
	a.jump(bpf.JumpEqual, 0x86dd, "ipv6", "reject")

	a.label("ipv4")
	a.add(bpf.LoadAbsolute{Off: 23, Size: 1}) // protocol
	a.jump(bpf.JumpEqual, 17, "", "reject")
	a.add(bpf.LoadAbsolute{Off: 20, Size: 2}) // flags and fragment offset
	a.jump(bpf.JumpBitsSet, 0x1fff, "reject", "")
	a.add(bpf.LoadMemShift{Off: 14}) // X = IPv4 header length
	a.acceptPorts(ports, bpf.LoadIndirect{Off: 14, Size: 2}, bpf.LoadIndirect{Off: 16, Size: 2})

	a.label("ipv6")
	a.add(bpf.LoadAbsolute{Off: 20, Size: 1}) // next header
	a.jump(bpf.JumpEqual, protoICMPv6, "ndp", "")
	a.jump(bpf.JumpEqual, 17, "", "reject")
	a.acceptPorts(ports, bpf.LoadAbsolute{Off: 54, Size: 2}, bpf.LoadAbsolute{Off: 56, Size: 2})

	a.label("ndp")
	a.add(bpf.LoadAbsolute{Off: 54, Size: 1}) // ICMPv6 type
	a.jump(bpf.JumpEqual, icmp6NeighSolic, "accept", "")
	a.jump(bpf.JumpEqual, icmp6NeighAdvert, "accept", "")
	a.label("reject")
	a.add(bpf.RetConstant{Val: 0})
	a.label("accept")
	a.add(bpf.RetConstant{Val: snaplen})
	prog, err := a.build()
	if err != nil {
		panic(err) // the program above is fixed: a failure is a bug caught by its test
	}
	return prog
}

// asm assembles classic BPF with symbolic forward jumps.
type asm struct {
	ins    []bpf.Instruction
	labels map[string]int
	jumps  []asmJump
}

type asmJump struct {
	at          int
	cond        bpf.JumpTest
	val         uint32
	true, false string // "" is the next instruction
}

func (a *asm) add(i bpf.Instruction) { a.ins = append(a.ins, i) }

func (a *asm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.ins)
}

func (a *asm) jump(cond bpf.JumpTest, val uint32, t, f string) {
	a.jumps = append(a.jumps, asmJump{at: len(a.ins), cond: cond, val: val, true: t, false: f})
	a.ins = append(a.ins, nil)
}

// acceptPorts loads each of the UDP port fields (source, destination) in turn and
// jumps to "accept" when it is one of ports; when none is, the packet is rejected.
func (a *asm) acceptPorts(ports []uint32, fields ...bpf.Instruction) {
	for _, load := range fields {
		a.add(load)
		for _, p := range ports {
			a.jump(bpf.JumpEqual, p, "accept", "")
		}
	}
	a.add(bpf.RetConstant{Val: 0})
}

func (a *asm) build() ([]bpf.Instruction, error) {
	skip := func(at int, label string) (uint8, error) {
		if label == "" {
			return 0, nil
		}
		to, ok := a.labels[label]
		if !ok {
			return 0, fmt.Errorf("bpf: no label %q", label)
		}
		d := to - at - 1
		if d < 0 || d > 255 {
			return 0, fmt.Errorf("bpf: jump from %d to %q out of range", at, label)
		}
		return uint8(d), nil
	}
	for _, j := range a.jumps {
		st, err := skip(j.at, j.true)
		if err != nil {
			return nil, err
		}
		sf, err := skip(j.at, j.false)
		if err != nil {
			return nil, err
		}
		a.ins[j.at] = bpf.JumpIf{Cond: j.cond, Val: j.val, SkipTrue: st, SkipFalse: sf}
	}
	return a.ins, nil
}
