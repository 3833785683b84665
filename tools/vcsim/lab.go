package main

// Lab file model, loading and strict validation.
//
// The lab JSON format is documented in README.md. Every validation error names
// the JSON field path, e.g. "lab: hosts[2].gpus[0].pci_id: missing".

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/ioutil"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

type Lab struct {
	Name       string       `json:"name"`
	Datacenter string       `json:"datacenter"`
	Clusters   []LabCluster `json:"clusters"`
	Hosts      []LabHost    `json:"hosts"`
	VMs        []LabVM      `json:"vms"`
	// The vCenter's instance UUID (ServiceContent.about.instanceUuid); default derived from the lab
	// (labInstanceUUID), so two labs served at once are two vCenters to a client that tells them apart by it.
	InstanceUUID string `json:"instance_uuid,omitempty"`
}

type LabCluster struct {
	Name string `json:"name"`
}

type LabCPU struct {
	Sockets int `json:"sockets"`
	Cores   int `json:"cores"`
	Threads int `json:"threads"`
	Mhz     int `json:"mhz,omitempty"` // optional, gpulab extension (default 2000)
}

type LabNumaNode struct {
	ID       *int     `json:"id"`
	CPUs     []int    `json:"cpus"`
	MemoryMB int64    `json:"memory_mb"`
	PciIDs   []string `json:"pci_ids"`
}

type LabBridge struct {
	PciID       string  `json:"pci_id"`
	Parent      *string `json:"parent"`
	VendorID    string  `json:"vendor_id"`
	DeviceID    string  `json:"device_id"`
	Name        string  `json:"name"`
	ClassID     string  `json:"class_id,omitempty"`      // optional, default 0x0604
	VendorName  string  `json:"vendor_name,omitempty"`   // optional, derived from vendor_id
	SubVendorID string  `json:"sub_vendor_id,omitempty"` // optional
	SubDeviceID string  `json:"sub_device_id,omitempty"` // optional
}

type LabOtherPci struct {
	PciID       string  `json:"pci_id"`
	ClassID     string  `json:"class_id"`
	VendorID    string  `json:"vendor_id"`
	DeviceID    string  `json:"device_id"`
	Name        string  `json:"name"`
	Parent      *string `json:"parent"`
	VendorName  string  `json:"vendor_name,omitempty"`
	SubVendorID string  `json:"sub_vendor_id,omitempty"`
	SubDeviceID string  `json:"sub_device_id,omitempty"`
}

type LabConsumer struct {
	VM      string  `json:"vm"`
	Kind    string  `json:"kind"`
	Profile *string `json:"profile"`
}

type LabGPU struct {
	PciID         string        `json:"pci_id"`
	DeviceID      string        `json:"device_id"`
	VendorID      string        `json:"vendor_id,omitempty"` // optional, default 0x10de
	Model         string        `json:"model"`
	MemoryMB      int64         `json:"memory_mb"`
	NumaNode      *int          `json:"numa_node"`
	PciePath      []string      `json:"pcie_path"`
	GraphicsType  *string       `json:"graphics_type"`
	VgpuMode      *string       `json:"vgpu_mode"`
	MigEnabled    bool          `json:"mig_enabled"`
	ModuleID      *int          `json:"module_id"`
	HardwareLabel string        `json:"hardware_label"`
	Profiles      []string      `json:"profiles"`
	Consumers     []LabConsumer `json:"consumers"`
	SubVendorID   string        `json:"sub_vendor_id,omitempty"` // optional, default 0x10de
	SubDeviceID   string        `json:"sub_device_id,omitempty"` // optional, default from built-in table
}

type LabHost struct {
	Name                string        `json:"name"`
	Cluster             *string       `json:"cluster"`
	Vendor              string        `json:"vendor"`
	Model               string        `json:"model"`
	CPUModel            string        `json:"cpu_model"`
	CPU                 *LabCPU       `json:"cpu"`
	MemoryMB            int64         `json:"memory_mb"`
	ConnectionState     string        `json:"connection_state"`
	Maintenance         bool          `json:"maintenance"`
	AssignmentPolicy    string        `json:"assignment_policy"`
	DefaultGraphicsType string        `json:"default_graphics_type"`
	NumaNodes           []LabNumaNode `json:"numa_nodes"`
	Bridges             []LabBridge   `json:"bridges"`
	OtherPci            []LabOtherPci `json:"other_pci"`
	GPUs                []LabGPU      `json:"gpus"`
}

type LabVM struct {
	Name                string `json:"name"`
	Host                string `json:"host"`
	PowerState          string `json:"power_state"`
	CPUs                int    `json:"cpus"`
	MemoryMB            int64  `json:"memory_mb"`
	MemoryReservationMB *int64 `json:"memory_reservation_mb"`
	// runtime.bootTime of a powered-on VM (RFC 3339); default: when gpulab built the lab
	BootTime string `json:"boot_time"`
}

// ---------------------------------------------------------------------------

var sbdfRe = regexp.MustCompile(`^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$`)

type sbdf struct {
	domain, bus, slot, function int
}

func parseSBDF(s string) (sbdf, error) {
	m := sbdfRe.FindStringSubmatch(s)
	if m == nil {
		return sbdf{}, fmt.Errorf("%q is not a PCI SBDF like \"0000:3b:00.0\" (lowercase hex)", s)
	}
	var v [4]int
	for i := 0; i < 4; i++ {
		n, _ := strconv.ParseInt(m[i+1], 16, 32)
		v[i] = int(n)
	}
	if v[2] > 0x1f {
		return sbdf{}, fmt.Errorf("%q: slot (device) must be <= 0x1f", s)
	}
	return sbdf{v[0], v[1], v[2], v[3]}, nil
}

// parseHex16 parses "0x10de" into 0..0xffff.
func parseHex16(s string) (int, error) {
	if !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X") {
		return 0, fmt.Errorf("%q must be a hex string like \"0x10de\"", s)
	}
	n, err := strconv.ParseUint(s[2:], 16, 16)
	if err != nil {
		return 0, fmt.Errorf("%q must be a 16-bit hex string like \"0x10de\"", s)
	}
	return int(n), nil
}

// int16bits stores an unsigned 16-bit id as the signed int16 bit pattern used by the vSphere API.
func int16bits(v int) int16 { return int16(uint16(v)) }

var graphicsTypes = map[string]bool{"direct": true, "sharedDirect": true, "shared": true, "basic": true}
var connStates = map[string]bool{"connected": true, "disconnected": true, "notResponding": true}
var powerStates = map[string]bool{"poweredOn": true, "poweredOff": true, "suspended": true}
var policies = map[string]bool{"performance": true, "consolidation": true}
var vgpuModes = map[string]bool{"sameSize": true, "mixedSize": true, "multiInstanceGpu": true}
var consumerKinds = map[string]bool{"passthrough": true, "dynamic-passthrough": true, "vgpu": true, "mig": true, "device-group": true}

// profile names: grid_a100d-20c, nvidia_h100xm-80c, MIG: grid_a100d-3-40c, nvidia_h100xm-1-10c
var profileRe = regexp.MustCompile(`^[a-z0-9]+_[a-z0-9]+-(?:([0-9]+)-)?([0-9]+)([a-z])(?:me)?$`)

// profileFramebufferGB returns the framebuffer size in GB encoded in a vGPU type name and
// whether it is a MIG-backed type ("-<slices>-<gb><series>").
func profileFramebufferGB(p string) (int, bool, bool) {
	m := profileRe.FindStringSubmatch(p)
	if m == nil {
		return 0, false, false
	}
	gb, _ := strconv.Atoi(m[2])
	return gb, m[1] != "", true
}

// ---------------------------------------------------------------------------

type labError struct{ msgs []string }

func (e *labError) add(path, format string, a ...interface{}) {
	e.msgs = append(e.msgs, "lab: "+path+": "+fmt.Sprintf(format, a...))
}

func (e *labError) Error() string {
	if len(e.msgs) > 10 {
		return strings.Join(e.msgs[:10], "\n") + fmt.Sprintf("\n... and %d more errors", len(e.msgs)-10)
	}
	return strings.Join(e.msgs, "\n")
}

// LoadLab reads and validates a lab file. Unknown JSON fields are tolerated (the lab format is a
// superset of the product's inventory export), but the first one is reported as a warning.
func LoadLab(path string) (*Lab, []string, error) {
	data, err := ioutil.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("lab: %v", err)
	}
	var warnings []string
	lab := new(Lab)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(lab); err != nil {
		if strings.Contains(err.Error(), "unknown field") {
			warnings = append(warnings, "lab: warning: "+err.Error()+" (ignored; further unknown fields not reported)")
			lab = new(Lab)
			err = json.Unmarshal(data, lab)
		}
		if err != nil {
			var te *json.UnmarshalTypeError
			var se *json.SyntaxError
			switch {
			case errors.As(err, &te):
				return nil, warnings, fmt.Errorf("lab: %s: expected %s, got JSON %s (byte offset %d)", te.Field, te.Type, te.Value, te.Offset)
			case errors.As(err, &se):
				return nil, warnings, fmt.Errorf("lab: invalid JSON at byte offset %d: %v", se.Offset, err)
			default:
				return nil, warnings, fmt.Errorf("lab: %v", err)
			}
		}
	}
	if err := lab.Validate(); err != nil {
		return nil, warnings, err
	}
	if lab.InstanceUUID == "" {
		lab.InstanceUUID = labInstanceUUID(lab.Name, data)
	}
	return lab, warnings, nil
}

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// namespaceURL is RFC 4122's URL namespace (Python's uuid.NAMESPACE_URL).
var namespaceURL = [16]byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}

// labInstanceUUID is the name-based (version 5) UUID of "gpulab:<lab name>" in the URL namespace, the same
// for every run of a lab (Python: uuid.uuid5(uuid.NAMESPACE_URL, "gpulab:" + name)); a lab without a name
// gets the one of "gpulab:sha256:<hex of the file's bytes>". Stock vcsim serves one fixed UUID to every
// instance, which made every lab look like the same vCenter.
func labInstanceUUID(name string, data []byte) string {
	if name == "" {
		name = fmt.Sprintf("sha256:%x", sha256.Sum256(data))
	}
	h := sha1.New()
	h.Write(namespaceURL[:])
	h.Write([]byte("gpulab:" + name))
	u := h.Sum(nil)[:16]
	u[6] = (u[6] & 0x0f) | 0x50 // version 5
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Validate checks the lab strictly and fills in defaults.
func (lab *Lab) Validate() error {
	e := &labError{}
	if lab.Datacenter == "" {
		lab.Datacenter = "GPU-DC"
	}
	if lab.InstanceUUID != "" {
		if !uuidRe.MatchString(strings.ToLower(lab.InstanceUUID)) {
			e.add("instance_uuid", "%q is not a UUID (8-4-4-4-12 hex digits, e.g. 5f0c2f6e-1b7a-4c1e-9d2a-3e4f5a6b7c8d)", lab.InstanceUUID)
		}
		lab.InstanceUUID = strings.ToLower(lab.InstanceUUID)
	}

	clusters := map[string]bool{}
	for i, c := range lab.Clusters {
		p := fmt.Sprintf("clusters[%d].name", i)
		switch {
		case c.Name == "":
			e.add(p, "missing")
		case clusters[c.Name]:
			e.add(p, "duplicate cluster name %q", c.Name)
		}
		clusters[c.Name] = true
	}

	hosts := map[string]int{}
	for i := range lab.Hosts {
		h := &lab.Hosts[i]
		p := fmt.Sprintf("hosts[%d]", i)
		if h.Name == "" {
			e.add(p+".name", "missing")
		} else if _, dup := hosts[h.Name]; dup {
			e.add(p+".name", "duplicate host name %q", h.Name)
		} else {
			hosts[h.Name] = i
		}
		if h.Cluster != nil && !clusters[*h.Cluster] {
			e.add(p+".cluster", "unknown cluster %q (not in clusters[])", *h.Cluster)
		}
	}

	vms := map[string]int{}
	for i := range lab.VMs {
		v := &lab.VMs[i]
		p := fmt.Sprintf("vms[%d]", i)
		if v.Name == "" {
			e.add(p+".name", "missing")
		} else if n := utf8.RuneCountInString(v.Name); n > 80 {
			// vSphere's limit; vcsim panics creating the VM's folder for longer names
			e.add(p+".name", "%d characters: vSphere allows at most 80", n)
		} else if strings.ContainsAny(v.Name, "/\\") {
			// vSphere stores "/" as %2f; vcsim makes the name a folder path and panics on it
			e.add(p+".name", "%q contains a slash, which the simulator cannot create a VM folder for", v.Name)
		} else if _, dup := vms[v.Name]; dup {
			e.add(p+".name", "duplicate VM name %q", v.Name)
		} else {
			vms[v.Name] = i
		}
		if v.Host == "" {
			e.add(p+".host", "missing")
		} else if _, ok := hosts[v.Host]; !ok {
			e.add(p+".host", "unknown host %q", v.Host)
		}
		if v.PowerState == "" {
			v.PowerState = "poweredOn"
		} else if !powerStates[v.PowerState] {
			e.add(p+".power_state", "%q is not one of poweredOn|poweredOff|suspended", v.PowerState)
		}
		if v.BootTime != "" {
			if _, err := time.Parse(time.RFC3339, v.BootTime); err != nil {
				e.add(p+".boot_time", "%q is not an RFC 3339 time with a zone (2026-11-30T08:00:00Z)", v.BootTime)
			} else if v.PowerState != "poweredOn" {
				e.add(p+".boot_time", "only a poweredOn VM has a boot time")
			}
		}
		if v.CPUs <= 0 {
			e.add(p+".cpus", "missing or not > 0")
		}
		if v.MemoryMB <= 0 {
			e.add(p+".memory_mb", "missing or not > 0")
		}
		if v.MemoryReservationMB != nil && (*v.MemoryReservationMB < 0 || *v.MemoryReservationMB > v.MemoryMB) {
			e.add(p+".memory_reservation_mb", "%d must be between 0 and memory_mb (%d)", *v.MemoryReservationMB, v.MemoryMB)
		}
	}

	for i := range lab.Hosts {
		lab.Hosts[i].validate(fmt.Sprintf("hosts[%d]", i), e, lab, vms)
	}

	if len(e.msgs) > 0 {
		return e
	}
	return nil
}

func (h *LabHost) validate(p string, e *labError, lab *Lab, vms map[string]int) {
	if h.CPU == nil {
		e.add(p+".cpu", "missing")
	} else {
		if h.CPU.Sockets <= 0 || h.CPU.Sockets > 64 {
			e.add(p+".cpu.sockets", "missing or out of range 1..64")
		}
		if h.CPU.Cores <= 0 || h.CPU.Cores > 32767 {
			e.add(p+".cpu.cores", "missing or out of range 1..32767")
		}
		if h.CPU.Threads <= 0 || h.CPU.Threads > 32767 {
			e.add(p+".cpu.threads", "missing or out of range 1..32767")
		} else if h.CPU.Threads < h.CPU.Cores {
			e.add(p+".cpu.threads", "%d is less than cores (%d)", h.CPU.Threads, h.CPU.Cores)
		}
	}
	if h.MemoryMB <= 0 {
		e.add(p+".memory_mb", "missing or not > 0")
	}
	if h.ConnectionState == "" {
		h.ConnectionState = "connected"
	} else if !connStates[h.ConnectionState] {
		e.add(p+".connection_state", "%q is not one of connected|disconnected|notResponding", h.ConnectionState)
	}
	if h.AssignmentPolicy == "" {
		h.AssignmentPolicy = "performance"
	} else if !policies[h.AssignmentPolicy] {
		e.add(p+".assignment_policy", "%q is not one of performance|consolidation", h.AssignmentPolicy)
	}
	if h.DefaultGraphicsType == "" {
		h.DefaultGraphicsType = "shared"
	} else if !graphicsTypes[h.DefaultGraphicsType] {
		e.add(p+".default_graphics_type", "%q is not one of direct|sharedDirect|shared|basic", h.DefaultGraphicsType)
	}

	// --- PCI devices: unique ids and parents ---
	ids := map[string]string{}    // pci_id -> field path of its definition
	kind := map[string]string{}   // pci_id -> bridge|gpu|other
	parent := map[string]string{} // bridge pci_id -> parent ("" = root)
	def := func(path, id, k string) {
		if id == "" {
			e.add(path, "missing")
			return
		}
		if _, err := parseSBDF(id); err != nil {
			e.add(path, "%v", err)
			return
		}
		if prev, dup := ids[id]; dup {
			e.add(path, "duplicate pci_id %q (already defined at %s)", id, prev)
			return
		}
		ids[id] = path
		kind[id] = k
	}
	checkHex := func(path, v string, required bool) {
		if v == "" {
			if required {
				e.add(path, "missing")
			}
			return
		}
		if _, err := parseHex16(v); err != nil {
			e.add(path, "%v", err)
		}
	}
	for j := range h.Bridges {
		b := &h.Bridges[j]
		bp := fmt.Sprintf("%s.bridges[%d]", p, j)
		def(bp+".pci_id", b.PciID, "bridge")
		checkHex(bp+".vendor_id", b.VendorID, true)
		checkHex(bp+".device_id", b.DeviceID, true)
		checkHex(bp+".class_id", b.ClassID, false)
		checkHex(bp+".sub_vendor_id", b.SubVendorID, false)
		checkHex(bp+".sub_device_id", b.SubDeviceID, false)
		if b.Name == "" {
			e.add(bp+".name", "missing")
		}
		if b.Parent != nil {
			parent[b.PciID] = *b.Parent
		} else {
			parent[b.PciID] = ""
		}
	}
	for j := range h.GPUs {
		def(fmt.Sprintf("%s.gpus[%d].pci_id", p, j), h.GPUs[j].PciID, "gpu")
	}
	for j := range h.OtherPci {
		o := &h.OtherPci[j]
		op := fmt.Sprintf("%s.other_pci[%d]", p, j)
		def(op+".pci_id", o.PciID, "other")
		checkHex(op+".class_id", o.ClassID, true)
		checkHex(op+".vendor_id", o.VendorID, true)
		checkHex(op+".device_id", o.DeviceID, true)
		checkHex(op+".sub_vendor_id", o.SubVendorID, false)
		checkHex(op+".sub_device_id", o.SubDeviceID, false)
		if o.Name == "" {
			e.add(op+".name", "missing")
		}
		if o.Parent != nil && *o.Parent != "" && kind[*o.Parent] != "bridge" {
			e.add(op+".parent", "%q is not a bridge of this host", *o.Parent)
		}
	}
	// bridge parents exist, are bridges, and form no cycle
	for j := range h.Bridges {
		b := &h.Bridges[j]
		bp := fmt.Sprintf("%s.bridges[%d].parent", p, j)
		if b.Parent == nil || *b.Parent == "" {
			continue
		}
		if kind[*b.Parent] != "bridge" {
			e.add(bp, "%q is not a bridge of this host", *b.Parent)
			continue
		}
		seen := map[string]bool{b.PciID: true}
		for cur := *b.Parent; cur != ""; cur = parent[cur] {
			if seen[cur] {
				e.add(bp, "cycle in bridge parents at %q", cur)
				break
			}
			seen[cur] = true
		}
	}

	// --- NUMA ---
	numaOf := map[string]int{} // pci_id -> numa node id
	numaIDs := map[int]bool{}
	cpuSeen := map[int]string{}
	for j := range h.NumaNodes {
		n := &h.NumaNodes[j]
		np := fmt.Sprintf("%s.numa_nodes[%d]", p, j)
		if n.ID == nil {
			e.add(np+".id", "missing")
			continue
		}
		if *n.ID < 0 || *n.ID > 255 {
			e.add(np+".id", "%d out of range 0..255", *n.ID)
		}
		if numaIDs[*n.ID] {
			e.add(np+".id", "duplicate NUMA node id %d", *n.ID)
		}
		numaIDs[*n.ID] = true
		if len(n.CPUs) == 0 {
			e.add(np+".cpus", "missing or empty")
		}
		for k, c := range n.CPUs {
			if c < 0 || (h.CPU != nil && c >= h.CPU.Threads) {
				e.add(fmt.Sprintf("%s.cpus[%d]", np, k), "cpu %d out of range 0..threads-1", c)
			} else if prev, dup := cpuSeen[c]; dup {
				e.add(fmt.Sprintf("%s.cpus[%d]", np, k), "cpu %d already in %s", c, prev)
			}
			cpuSeen[c] = np
		}
		if n.MemoryMB < 0 {
			e.add(np+".memory_mb", "must be >= 0")
		}
		for k, id := range n.PciIDs {
			kp := fmt.Sprintf("%s.pci_ids[%d]", np, k)
			if _, ok := ids[id]; !ok {
				e.add(kp, "unknown pci_id %q (not a bridge, gpu or other_pci of this host)", id)
				continue
			}
			if prev, dup := numaOf[id]; dup {
				e.add(kp, "pci_id %q is already in NUMA node %d", id, prev)
				continue
			}
			numaOf[id] = *n.ID
		}
	}

	// --- GPUs ---
	hostVMs := map[string]bool{}
	for _, v := range lab.VMs {
		if v.Host == h.Name {
			hostVMs[v.Name] = true
		}
	}
	for j := range h.GPUs {
		g := &h.GPUs[j]
		gp := fmt.Sprintf("%s.gpus[%d]", p, j)
		checkHex(gp+".device_id", g.DeviceID, true)
		checkHex(gp+".vendor_id", g.VendorID, false)
		checkHex(gp+".sub_vendor_id", g.SubVendorID, false)
		checkHex(gp+".sub_device_id", g.SubDeviceID, false)
		if g.VendorID == "" {
			g.VendorID = "0x10de"
		}
		if g.Model == "" {
			e.add(gp+".model", "missing")
		}
		if g.MemoryMB <= 0 {
			e.add(gp+".memory_mb", "missing or not > 0")
		}
		// pcie_path must equal the chain of bridge parents
		for k, b := range g.PciePath {
			if kind[b] != "bridge" {
				e.add(fmt.Sprintf("%s.pcie_path[%d]", gp, k), "%q is not a bridge of this host", b)
			}
		}
		if len(g.PciePath) > 0 && kind[g.PciePath[len(g.PciePath)-1]] == "bridge" {
			var chain []string
			for cur := g.PciePath[len(g.PciePath)-1]; cur != "" && len(chain) <= len(h.Bridges); cur = parent[cur] {
				chain = append([]string{cur}, chain...)
			}
			if strings.Join(chain, ",") != strings.Join(g.PciePath, ",") {
				e.add(gp+".pcie_path", "%v does not match the bridge parent chain %v (root first)", g.PciePath, chain)
			}
		}
		// NUMA
		if len(h.NumaNodes) > 0 && g.PciID != "" {
			node, ok := numaOf[g.PciID]
			switch {
			case !ok:
				e.add(gp+".pci_id", "%q is in no numa_nodes[].pci_ids", g.PciID)
			case g.NumaNode == nil:
				e.add(gp+".numa_node", "missing (GPU is in NUMA node %d)", node)
			case *g.NumaNode != node:
				e.add(gp+".numa_node", "%d but numa_nodes lists %q in node %d", *g.NumaNode, g.PciID, node)
			}
		} else if len(h.NumaNodes) == 0 && g.NumaNode != nil {
			e.add(gp+".numa_node", "%d but the host has no numa_nodes", *g.NumaNode)
		}
		if g.GraphicsType != nil && *g.GraphicsType == "" {
			g.GraphicsType = nil // "" means null (as in the product's inventory export)
		}
		if g.VgpuMode != nil && *g.VgpuMode == "" {
			g.VgpuMode = nil
		}
		gt := ""
		if g.GraphicsType != nil {
			gt = *g.GraphicsType
			if !graphicsTypes[gt] {
				e.add(gp+".graphics_type", "%q is not one of direct|sharedDirect|shared|basic|null", gt)
			}
		}
		if g.VgpuMode != nil && !vgpuModes[*g.VgpuMode] {
			e.add(gp+".vgpu_mode", "%q is not one of sameSize|mixedSize|multiInstanceGpu|null", *g.VgpuMode)
		}
		if g.ModuleID != nil && *g.ModuleID < 0 {
			e.add(gp+".module_id", "must be >= 0")
		}
		if gt == "direct" && len(g.Profiles) > 0 {
			e.add(gp+".profiles", "must be [] for graphics_type \"direct\"")
		}
		profiles := map[string]bool{}
		maxGB := 0
		for k, pr := range g.Profiles {
			kp := fmt.Sprintf("%s.profiles[%d]", gp, k)
			gb, _, ok := profileFramebufferGB(pr)
			if !ok {
				e.add(kp, "%q is not a vGPU type name like \"grid_a100d-20c\" or \"nvidia_h100xm-3-40c\"", pr)
			}
			if profiles[pr] {
				e.add(kp, "duplicate profile %q", pr)
			}
			profiles[pr] = true
			if gb > maxGB {
				maxGB = gb
			}
		}
		// consumers
		passthru, shared := 0, 0
		usedGB := 0
		var firstProfile string
		seenVM := map[string]bool{}
		for k := range g.Consumers {
			c := &g.Consumers[k]
			cp := fmt.Sprintf("%s.consumers[%d]", gp, k)
			if c.VM == "" {
				e.add(cp+".vm", "missing")
			} else if _, ok := vms[c.VM]; !ok {
				e.add(cp+".vm", "unknown VM %q (not in vms[])", c.VM)
			} else if !hostVMs[c.VM] {
				e.add(cp+".vm", "VM %q runs on host %q, not on %q", c.VM, lab.VMs[vms[c.VM]].Host, h.Name)
			}
			if !consumerKinds[c.Kind] {
				e.add(cp+".kind", "%q is not one of passthrough|dynamic-passthrough|vgpu|mig|device-group", c.Kind)
				continue
			}
			switch c.Kind {
			case "passthrough", "dynamic-passthrough":
				passthru++
				if c.Profile != nil {
					e.add(cp+".profile", "must be null for kind %q", c.Kind)
				}
				if gt != "direct" {
					e.add(cp+".kind", "%q needs graphics_type \"direct\" (GPU has %q)", c.Kind, gt)
				}
				if seenVM[c.VM] {
					e.add(cp+".vm", "VM %q consumes this GPU twice", c.VM)
				}
				seenVM[c.VM] = true
			case "vgpu", "mig", "device-group":
				shared++
				if c.Profile == nil || *c.Profile == "" {
					e.add(cp+".profile", "missing (required for kind %q)", c.Kind)
					continue
				}
				if gt != "sharedDirect" {
					e.add(cp+".kind", "%q needs graphics_type \"sharedDirect\" (GPU has %q)", c.Kind, gt)
				}
				if !profiles[*c.Profile] {
					e.add(cp+".profile", "%q is not in this GPU's profiles", *c.Profile)
				}
				gb, mig, _ := profileFramebufferGB(*c.Profile)
				if c.Kind != "device-group" && mig != (c.Kind == "mig") {
					e.add(cp+".profile", "%q does not match kind %q (MIG-backed types look like \"grid_a100d-3-40c\")", *c.Profile, c.Kind)
				}
				if c.Kind == "mig" && !g.MigEnabled {
					e.add(cp+".kind", "\"mig\" consumer on a GPU with mig_enabled false")
				}
				if c.Kind == "vgpu" && g.MigEnabled {
					e.add(cp+".kind", "time-sliced \"vgpu\" consumer on a GPU with mig_enabled true")
				}
				usedGB += gb
				if firstProfile == "" {
					firstProfile = *c.Profile
				} else if g.VgpuMode != nil && *g.VgpuMode == "sameSize" && *c.Profile != firstProfile {
					e.add(cp+".profile", "%q differs from %q on a GPU in vgpu_mode sameSize", *c.Profile, firstProfile)
				}
			}
		}
		if passthru > 1 {
			e.add(gp+".consumers", "%d passthrough consumers; a passthrough GPU has at most one", passthru)
		}
		if passthru > 0 && shared > 0 {
			e.add(gp+".consumers", "mixes passthrough and vGPU consumers")
		}
		if maxGB > 0 && usedGB > maxGB {
			e.add(gp+".consumers", "vGPU framebuffer sum %d GB exceeds the GPU's largest profile (%d GB)", usedGB, maxGB)
		}
	}
}

// sortedProfiles returns the sorted union of the host's GPU profiles.
func (h *LabHost) sortedProfiles() []string {
	set := map[string]bool{}
	for _, g := range h.GPUs {
		for _, p := range g.Profiles {
			set[p] = true
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

var vendorNames = map[int]string{
	0x10de: "NVIDIA Corporation",
	0x8086: "Intel Corporation",
	0x1022: "Advanced Micro Devices, Inc. [AMD]",
	0x1000: "Broadcom / LSI",
	0x10b5: "PLX Technology, Inc.",
	0x15b3: "Mellanox Technologies",
	0x14e4: "Broadcom Inc. and subsidiaries",
	0x1028: "Dell",
	0x15d9: "Super Micro Computer Inc",
	0x144d: "Samsung Electronics Co Ltd",
}

func vendorName(id int, override string) string {
	if override != "" {
		return override
	}
	if n, ok := vendorNames[id]; ok {
		return n
	}
	return fmt.Sprintf("Vendor %04x", id)
}

// NVIDIA board subsystem device ids for the GPUs used by the labs.
var gpuSubDevice = map[int]int{
	0x2330: 0x16c1, // H100 SXM5 80GB
	0x2321: 0x1839, // H100 NVL
	0x20b5: 0x1533, // A100 PCIe 80GB
	0x26b9: 0x1851, // L40S
	0x22a3: 0x1796, // NVSwitch
}

func hexOr(s string, def int) int {
	if s == "" {
		return def
	}
	v, _ := parseHex16(s)
	return v
}

func mustWarn(msgs []string) {
	for _, m := range msgs {
		fmt.Fprintln(os.Stderr, m)
	}
}
