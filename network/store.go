package network

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth/berth/internal/osutil"
)

// netRecord is a network as persisted in <root>/networks/<id>.json.
type netRecord struct {
	ID          string
	Name        string
	Driver      string // bridge, host, null
	Scope       string
	Created     time.Time
	Subnet      netip.Prefix `json:",omitzero"`
	IPRange     netip.Prefix `json:",omitzero"`
	Gateway     netip.Addr   `json:",omitzero"`
	Internal    bool
	Attachable  bool
	Labels      map[string]string
	Options     map[string]string
	IPAMDriver  string
	IPAMOptions map[string]string
	Bridge      string
	Predefined  bool // bridge, host, none: cannot be removed
	// AuxAddresses are IPAM's auxiliary addresses: shown, never given.
	AuxAddresses map[string]netip.Addr `json:",omitempty"`
	// IPv6: EnableIPv6 (--ipv6) gives containers addresses of Subnet6.
	// Without it an IPv6 IPAM config is kept and shown, and unused, as
	// dockerd does. Gateway6 is always set with EnableIPv6 (the subnet's
	// first address unless asked); Gateway6Given says it was asked, since
	// inspect shows only an asked one (dockerd shows the IPAM request).
	EnableIPv6    bool                  `json:",omitempty"`
	Subnet6       netip.Prefix          `json:",omitzero"`
	IPRange6      netip.Prefix          `json:",omitzero"`
	Gateway6      netip.Addr            `json:",omitzero"`
	Gateway6Given bool                  `json:",omitempty"`
	AuxAddresses6 map[string]netip.Addr `json:",omitempty"`
}

// hasIPv6 reports whether containers on n get IPv6 addresses.
func (n *netRecord) hasIPv6() bool {
	return n.EnableIPv6 && n.Subnet6.IsValid() && n.Bridge != ""
}

// sandbox is a container's networking, persisted in
// <root>/sandboxes/<container id>.json from its first Setup (or connect)
// until Release. Endpoints lists the networks it belongs to; while the
// container runs they carry its addresses, and NetNS and Ports are set.
type sandbox struct {
	ContainerID string
	Name        string
	Hostname    string
	Mode        string // the network mode it was set up with
	NetNS       string `json:",omitempty"`
	Endpoints   []*endpoint
	Ports       []binding `json:",omitempty"`
	Exposed     []string  `json:",omitempty"` // "80/tcp": Config.ExposedPorts while running
	DNS         []string  `json:",omitempty"` // --dns servers the embedded DNS forwards to
}

// endpoint is a container's attachment to one network.
type endpoint struct {
	NetworkID   string
	Aliases     []string   `json:",omitempty"`
	RequestedIP netip.Addr `json:",omitzero"` // --ip
	// RequestedIP6 is --ip6 (IPAMConfig.IPv6Address).
	RequestedIP6 netip.Addr `json:",omitzero"`
	// RequestedMAC is --mac-address (or the endpoint's MacAddress).
	RequestedMAC string `json:",omitempty"`
	// DriverOpts and LinkLocalIPs are kept as asked, for inspect.
	DriverOpts   map[string]string `json:",omitempty"`
	LinkLocalIPs []netip.Addr      `json:",omitempty"`
	// Set while running:
	EndpointID string     `json:",omitempty"`
	IfName     string     `json:",omitempty"`
	HostVeth   string     `json:",omitempty"`
	IP         netip.Addr `json:",omitzero"`
	IP6        netip.Addr `json:",omitzero"` // on a network with IPv6
	MAC        string     `json:",omitempty"`
}

// binding is one published port as actually bound on the host.
type binding struct {
	Proto    string
	HostIP   netip.Addr // 0.0.0.0 or :: for all addresses
	HostPort uint16
	CtrPort  uint16
}

// writeJSON replaces path atomically. With sync it is also durable:
// networks are, since they must survive a reboot. Sandbox records are not:
// they only describe kernel objects that a reboot destroys anyway, and a
// berthd crash does not lose the page cache, so a rename is enough and saves
// milliseconds on every start.
func writeJSON(path string, v any, sync bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if sync {
		return osutil.WriteFileAtomic(path, b)
	}
	return osutil.ReplaceFile(path, b)
}

// readDir decodes every <name>.json of dir with fn; unreadable files are
// reported to bad and skipped.
func readDir(dir string, fn func(b []byte) error, bad func(name string, err error)) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") && strings.HasSuffix(e.Name(), ".tmp") {
			// The temporary of an atomic write a crash cut short.
			_ = os.Remove(filepath.Join(dir, e.Name()))
			continue
		}
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err == nil {
			err = fn(b)
		}
		if err != nil {
			bad(e.Name(), err)
		}
	}
	return nil
}
