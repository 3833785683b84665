package main

// Builds the vcsim inventory for a lab: datacenter, clusters, hosts (with GPU hardware and
// graphics config), one local datastore, and the lab VMs with their PCI passthrough / vGPU devices.

import (
	"context"
	"crypto/sha1"
	"fmt"
	"io/ioutil"
	"os"
	"strings"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

const apiVersion = "7.0.3.0"

// newModel returns an empty VPX model (no default datacenter/hosts/VMs) advertising API 7.0.3.0 and
// the lab's vCenter instance UUID.
func newModel(instanceUUID string) *simulator.Model {
	m := simulator.VPX()
	m.Datacenter = 0
	m.Portgroup = 0
	m.Host = 0
	m.Cluster = 0
	m.ClusterHost = 0
	m.Datastore = 0
	m.Machine = 0
	m.Autostart = false
	// ServiceContent is a struct copy of vpx.ServiceContent; About is a value field, so this does
	// not touch the package global.
	m.ServiceContent.About.ApiVersion = apiVersion
	m.ServiceContent.About.Version = "7.0.3"
	m.ServiceContent.About.Build = "21477706"
	m.ServiceContent.About.FullName = "VMware vCenter Server 7.0.3 build-21477706 (gpulab/vcsim)"
	m.ServiceContent.About.InstanceUuid = instanceUUID
	return m
}

type builder struct {
	ctx     context.Context
	c       *vim25.Client
	lab     *Lab
	dsDir   string
	hosts   map[string]*object.HostSystem
	pools   map[string]*object.ResourcePool
	vmRefs  map[string]types.ManagedObjectReference
	folders *object.DatacenterFolders
	refs    *refAllocator
}

func buildLab(ctx context.Context, m *simulator.Model, lab *Lab) (dsDir string, err error) {
	c, err := vim25.NewClient(ctx, m.Service) // in-process client (Service is a soap.RoundTripper)
	if err != nil {
		return "", err
	}
	b := &builder{ctx: ctx, c: c, lab: lab,
		hosts:  map[string]*object.HostSystem{},
		pools:  map[string]*object.ResourcePool{},
		vmRefs: map[string]types.ManagedObjectReference{},
	}
	if b.refs, err = newRefAllocator(); err != nil {
		return "", err
	}
	b.dsDir, err = ioutil.TempDir(datastoreParent(), "gpulab-ds-")
	if err != nil {
		return "", err
	}
	t0 := time.Now()
	if err = b.inventory(); err != nil {
		return b.dsDir, err
	}
	t1 := time.Now()
	if err = b.vms(); err != nil {
		return b.dsDir, err
	}
	b.refs.done()
	t2 := time.Now()
	b.hostHardware()
	if os.Getenv("GPULAB_TIMING") != "" {
		fmt.Fprintf(os.Stderr, "gpulab: build timing: hosts %.2fs, vms %.2fs, hardware %.2fs\n",
			t1.Sub(t0).Seconds(), t2.Sub(t1).Seconds(), time.Since(t2).Seconds())
	}
	return b.dsDir, nil
}

// datastoreParent is where the VM files (.vmx etc., a few bytes each) go: vcsim creates a directory
// and files per VM, which dominates startup on a disk-backed /tmp; tmpfs (/dev/shm) is ~3x faster.
// Override with GPULAB_DS_DIR.
func datastoreParent() string {
	if d := os.Getenv("GPULAB_DS_DIR"); d != "" {
		return d
	}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if f, err := ioutil.TempFile("/dev/shm", "gpulab-probe-"); err == nil {
			f.Close()
			os.Remove(f.Name())
			return "/dev/shm"
		}
	}
	return ""
}

func (b *builder) inventory() error {
	root := object.NewRootFolder(b.c)
	err := b.refs.within("datacenter", b.lab.Datacenter, 0, func() error {
		dc, err := root.CreateDatacenter(b.ctx, b.lab.Datacenter)
		if err != nil {
			return fmt.Errorf("create datacenter: %w", err)
		}
		b.folders, err = dc.Folders(b.ctx)
		return err
	})
	if err != nil {
		return err
	}
	clusters := map[string]*object.ClusterComputeResource{}
	for _, cl := range b.lab.Clusters {
		err := b.refs.within("cluster", cl.Name, 0, func() error {
			cc, err := b.folders.HostFolder.CreateCluster(b.ctx, cl.Name, types.ClusterConfigSpecEx{})
			if err != nil {
				return fmt.Errorf("create cluster %s: %w", cl.Name, err)
			}
			clusters[cl.Name] = cc
			return nil
		})
		if err != nil {
			return err
		}
	}
	for i := range b.lab.Hosts {
		h := &b.lab.Hosts[i]
		// Adding a standalone host allocates its ComputeResource's EnvironmentBrowser before the host,
		// adding one to a cluster does not: skip that number for a clustered host, so that moving a
		// host into or out of a cluster keeps its moref.
		skip := int64(0)
		if h.Cluster != nil {
			skip = 1
		}
		if err := b.refs.within("host", h.Name, skip, func() error { return b.addHost(h, clusters) }); err != nil {
			return err
		}
	}
	return nil
}

func (b *builder) addHost(h *LabHost, clusters map[string]*object.ClusterComputeResource) error {
	spec := types.HostConnectSpec{HostName: h.Name}
	var task *object.Task
	var err error
	if h.Cluster != nil {
		task, err = clusters[*h.Cluster].AddHost(b.ctx, spec, true, nil, nil)
	} else {
		task, err = b.folders.HostFolder.AddStandaloneHost(b.ctx, spec, true, nil, nil)
	}
	if err != nil {
		return fmt.Errorf("add host %s: %w", h.Name, err)
	}
	info, err := task.WaitForResult(b.ctx, nil)
	if err != nil {
		return fmt.Errorf("add host %s: %w", h.Name, err)
	}
	host := object.NewHostSystem(b.c, info.Result.(types.ManagedObjectReference))
	b.hosts[h.Name] = host
	pool, err := host.ResourcePool(b.ctx)
	if err != nil {
		return fmt.Errorf("resource pool of %s: %w", h.Name, err)
	}
	b.pools[h.Name] = pool
	// one shared "local" datastore (same directory) mounted on every host, for VM files
	dss, err := host.ConfigManager().DatastoreSystem(b.ctx)
	if err != nil {
		return err
	}
	if _, err = dss.CreateLocalDatastore(b.ctx, "LocalDS_0", b.dsDir); err != nil {
		return fmt.Errorf("datastore on %s: %w", h.Name, err)
	}
	return nil
}

// consumersByVM maps VM name -> list of (host, gpu, consumer) in lab order.
type gpuUse struct {
	host *LabHost
	gpu  *LabGPU
	c    *LabConsumer
}

func (b *builder) consumersByVM() map[string][]gpuUse {
	out := map[string][]gpuUse{}
	for i := range b.lab.Hosts {
		h := &b.lab.Hosts[i]
		for j := range h.GPUs {
			g := &h.GPUs[j]
			for k := range g.Consumers {
				c := &g.Consumers[k]
				out[c.VM] = append(out[c.VM], gpuUse{h, g, c})
			}
		}
	}
	return out
}

func systemID(hostName string) string {
	s := sha1.Sum([]byte(hostName))
	return fmt.Sprintf("%x-%x-%x", s[0:4], s[4:8], s[8:14])
}

func (b *builder) pciDevices(uses []gpuUse) []types.BaseVirtualDeviceConfigSpec {
	var specs []types.BaseVirtualDeviceConfigSpec
	for i, u := range uses {
		devID := hexOr(u.gpu.DeviceID, 0)
		vendID := hexOr(u.gpu.VendorID, 0x10de)
		dev := &types.VirtualPCIPassthrough{}
		d := dev.GetVirtualDevice()
		d.Key = int32(13000 + i)
		d.ControllerKey = 100 // the default VirtualPCIController
		label := fmt.Sprintf("PCI device %d", i)
		switch u.c.Kind {
		case "vgpu", "mig", "device-group": // device groups: deviceGroupInfo (API 8.0) cannot be served
			d.Backing = &types.VirtualPCIPassthroughVmiopBackingInfo{Vgpu: *u.c.Profile}
			d.DeviceInfo = &types.Description{Label: label, Summary: "NVIDIA GRID vGPU " + *u.c.Profile}
		case "passthrough":
			d.Backing = &types.VirtualPCIPassthroughDeviceBackingInfo{
				VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: u.gpu.Model},
				Id:                             u.gpu.PciID,
				DeviceId:                       fmt.Sprintf("%x", devID),
				SystemId:                       systemID(u.host.Name),
				VendorId:                       int16bits(vendID),
			}
			d.DeviceInfo = &types.Description{Label: label, Summary: u.gpu.PciID + " | " + u.gpu.Model}
		case "dynamic-passthrough":
			back := &types.VirtualPCIPassthroughDynamicBackingInfo{
				VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: ""},
				AllowedDevice: []types.VirtualPCIPassthroughAllowedDevice{{
					VendorId: int32(vendID), DeviceId: int32(devID),
				}},
				CustomLabel: u.gpu.HardwareLabel,
				AssignedId:  u.gpu.PciID,
			}
			d.Backing = back
			d.DeviceInfo = &types.Description{Label: label, Summary: "Dynamic DirectPath IO " + u.gpu.Model}
		}
		specs = append(specs, &types.VirtualDeviceConfigSpec{
			Operation: types.VirtualDeviceConfigSpecOperationAdd,
			Device:    dev,
		})
	}
	return specs
}

func (b *builder) vms() error {
	uses := b.consumersByVM()
	for i := range b.lab.VMs {
		v := &b.lab.VMs[i]
		if err := b.refs.within("vm", v.Name, 0, func() error { return b.createVM(v, uses[v.Name]) }); err != nil {
			return err
		}
	}
	return nil
}

func (b *builder) createVM(v *LabVM, uses []gpuUse) error {
	host := b.hosts[v.Host]
	res := int64(0)
	if v.MemoryReservationMB != nil {
		res = *v.MemoryReservationMB
	}
	limit := int64(-1)
	spec := types.VirtualMachineConfigSpec{
		Name:     v.Name,
		GuestId:  string(types.VirtualMachineGuestOsIdentifierUbuntu64Guest),
		NumCPUs:  int32(v.CPUs),
		MemoryMB: v.MemoryMB,
		Files:    &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"},
		MemoryAllocation: &types.ResourceAllocationInfo{
			Reservation:           &res,
			ExpandableReservation: types.NewBool(false),
			Limit:                 &limit,
			Shares:                &types.SharesInfo{Level: types.SharesLevelNormal, Shares: int32(v.MemoryMB * 10)},
		},
		DeviceChange: b.pciDevices(uses),
	}
	if res == v.MemoryMB {
		spec.MemoryReservationLockedToMax = types.NewBool(true)
	}
	task, err := b.folders.VmFolder.CreateVM(b.ctx, spec, b.pools[v.Host], host)
	if err != nil {
		return fmt.Errorf("create VM %s: %w", v.Name, err)
	}
	info, err := task.WaitForResult(b.ctx, nil)
	if err != nil {
		return fmt.Errorf("create VM %s: %w", v.Name, err)
	}
	ref := info.Result.(types.ManagedObjectReference)
	b.vmRefs[v.Name] = ref
	vm := object.NewVirtualMachine(b.c, ref)
	if v.PowerState == "poweredOn" || v.PowerState == "suspended" {
		t, err := vm.PowerOn(b.ctx)
		if err == nil {
			err = t.Wait(b.ctx)
		}
		if err != nil {
			return fmt.Errorf("power on VM %s: %w", v.Name, err)
		}
	}
	if v.PowerState == "poweredOn" {
		// vcsim 0.24 leaves runtime.bootTime unset; vCenter reports it for every powered-on VM
		boot := time.Now().UTC()
		if v.BootTime != "" {
			boot, _ = time.Parse(time.RFC3339, v.BootTime) // validated in lab.go
		}
		sv := simulator.Map.Get(ref).(*simulator.VirtualMachine)
		simulator.Map.WithLock(sv, func() { sv.Runtime.BootTime = &boot })
	}
	if v.PowerState == "suspended" {
		t, err := vm.Suspend(b.ctx)
		if err == nil {
			err = t.Wait(b.ctx)
		}
		if err != nil {
			return fmt.Errorf("suspend VM %s: %w", v.Name, err)
		}
	}
	return nil
}

// hostHardware edits the simulator's HostSystem objects directly (under the registry lock).
func (b *builder) hostHardware() {
	for i := range b.lab.Hosts {
		h := &b.lab.Hosts[i]
		ref := b.hosts[h.Name].Reference()
		hs := simulator.Map.Get(ref).(*simulator.HostSystem)
		simulator.Map.WithLock(hs, func() { b.applyHost(hs, h) })
	}
}

func pciDevice(id string, class, vendor, device, subVendor, subDevice int, vname, dname, parent string) types.HostPciDevice {
	a, _ := parseSBDF(id)
	return types.HostPciDevice{
		Id:           id,
		ClassId:      int16bits(class),
		Bus:          byte(a.bus),
		Slot:         byte(a.slot),
		Function:     byte(a.function),
		VendorId:     int16bits(vendor),
		SubVendorId:  int16bits(subVendor),
		VendorName:   vname,
		DeviceId:     int16bits(device),
		SubDeviceId:  int16bits(subDevice),
		ParentBridge: parent,
		DeviceName:   dname,
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (b *builder) applyHost(hs *simulator.HostSystem, h *LabHost) {
	// ---- hardware (NewHostSystem made a shallow copy of esx.HostHardwareInfo: replace, never
	// mutate, any slice or pointer field) ----
	hw := *hs.Hardware
	hw.SystemInfo.Vendor = h.Vendor
	hw.SystemInfo.Model = h.Model
	hw.SystemInfo.SerialNumber = strings.ToUpper(systemID(h.Name)[:10])
	hw.SystemInfo.OtherIdentifyingInfo = nil
	mhz := h.CPU.Mhz
	if mhz == 0 {
		mhz = 2000
	}
	cpuModel := h.CPUModel
	if cpuModel == "" {
		cpuModel = "Intel(R) Xeon(R) CPU"
		if strings.Contains(strings.ToLower(h.Vendor+h.Model), "amd") {
			cpuModel = "AMD EPYC Processor"
		}
	}
	hw.CpuInfo = types.HostCpuInfo{
		NumCpuPackages: int16(h.CPU.Sockets),
		NumCpuCores:    int16(h.CPU.Cores),
		NumCpuThreads:  int16(h.CPU.Threads),
		Hz:             int64(mhz) * 1000000,
	}
	hw.CpuPkg = nil
	perPkg := h.CPU.Threads / h.CPU.Sockets
	for s := 0; s < h.CPU.Sockets; s++ {
		pkg := types.HostCpuPackage{Index: int16(s), Vendor: "intel", Hz: hw.CpuInfo.Hz, BusHz: 100000000, Description: cpuModel}
		if strings.HasPrefix(cpuModel, "AMD") {
			pkg.Vendor = "amd"
		}
		for t := s * perPkg; t < (s+1)*perPkg; t++ {
			pkg.ThreadId = append(pkg.ThreadId, int16(t))
		}
		hw.CpuPkg = append(hw.CpuPkg, pkg)
	}
	hw.MemorySize = h.MemoryMB * 1024 * 1024

	// PCI devices: bridges, GPUs, others (lab order)
	var pci []types.HostPciDevice
	for _, br := range h.Bridges {
		v := hexOr(br.VendorID, 0)
		pci = append(pci, pciDevice(br.PciID, hexOr(br.ClassID, 0x0604), v, hexOr(br.DeviceID, 0),
			hexOr(br.SubVendorID, 0), hexOr(br.SubDeviceID, 0), vendorName(v, br.VendorName), br.Name, deref(br.Parent)))
	}
	for _, g := range h.GPUs {
		v := hexOr(g.VendorID, 0x10de)
		d := hexOr(g.DeviceID, 0)
		parent := ""
		if n := len(g.PciePath); n > 0 {
			parent = g.PciePath[n-1]
		}
		pci = append(pci, pciDevice(g.PciID, 0x0302, v, d, hexOr(g.SubVendorID, 0x10de), hexOr(g.SubDeviceID, gpuSubDevice[d]),
			vendorName(v, ""), g.Model, parent))
	}
	for _, o := range h.OtherPci {
		v := hexOr(o.VendorID, 0)
		d := hexOr(o.DeviceID, 0)
		sd := 0
		if v == 0x10de {
			sd = gpuSubDevice[d]
		}
		pci = append(pci, pciDevice(o.PciID, hexOr(o.ClassID, 0), v, d, hexOr(o.SubVendorID, v), hexOr(o.SubDeviceID, sd),
			vendorName(v, o.VendorName), o.Name, deref(o.Parent)))
	}
	hw.PciDevice = pci

	// NUMA
	hw.NumaInfo = nil
	if len(h.NumaNodes) > 0 {
		ni := &types.HostNumaInfo{Type: "NUMA", NumNodes: int32(len(h.NumaNodes))}
		begin := int64(0)
		for _, n := range h.NumaNodes {
			node := types.HostNumaNode{
				TypeId:            byte(*n.ID),
				MemoryRangeBegin:  begin,
				MemoryRangeLength: n.MemoryMB * 1024 * 1024,
				PciId:             append([]string(nil), n.PciIDs...),
			}
			for _, c := range n.CPUs {
				node.CpuID = append(node.CpuID, int16(c))
			}
			begin += node.MemoryRangeLength
			ni.NumaNode = append(ni.NumaNode, node)
		}
		hw.NumaInfo = ni
	}
	hs.Hardware = &hw

	// ---- summary ----
	sh := *hs.Summary.Hardware
	sh.Vendor = h.Vendor
	sh.Model = h.Model
	sh.OtherIdentifyingInfo = nil
	sh.MemorySize = hw.MemorySize
	sh.CpuModel = cpuModel
	sh.CpuMhz = int32(mhz)
	sh.NumCpuPkgs = int16(h.CPU.Sockets)
	sh.NumCpuCores = int16(h.CPU.Cores)
	sh.NumCpuThreads = int16(h.CPU.Threads)
	hs.Summary.Hardware = &sh

	// ---- config (NewHostSystem deep-copied esx.HostConfigInfo, so hs.Config is ours) ----
	product := hs.Config.Product // value copy
	product.ApiVersion = apiVersion
	product.Version = "7.0.3"
	product.Build = "21930508"
	product.FullName = "VMware ESXi 7.0.3 build-21930508"
	hs.Config.Product = product
	sp := product
	hs.Summary.Config.Product = &sp // was a pointer to the esx package global

	usersByGPU := func(g *LabGPU) []types.ManagedObjectReference {
		var refs []types.ManagedObjectReference
		seen := map[string]bool{}
		for _, c := range g.Consumers {
			if seen[c.VM] {
				continue
			}
			seen[c.VM] = true
			refs = append(refs, b.vmRefs[c.VM])
		}
		return refs
	}
	var gi []types.HostGraphicsInfo
	gc := &types.HostGraphicsConfig{
		HostDefaultGraphicsType:        h.DefaultGraphicsType,
		SharedPassthruAssignmentPolicy: h.AssignmentPolicy,
	}
	var pt []types.BaseHostPciPassthruInfo
	for j := range h.GPUs {
		g := &h.GPUs[j]
		if g.GraphicsType != nil {
			gi = append(gi, types.HostGraphicsInfo{
				DeviceName:     g.Model,
				VendorName:     vendorName(hexOr(g.VendorID, 0x10de), ""),
				PciId:          g.PciID,
				GraphicsType:   *g.GraphicsType,
				MemorySizeInKB: g.MemoryMB * 1024,
				Vm:             usersByGPU(g),
			})
			gc.DeviceType = append(gc.DeviceType, types.HostGraphicsConfigDeviceType{
				DeviceId: g.PciID, GraphicsType: *g.GraphicsType,
			})
		}
		enabled := g.GraphicsType != nil && *g.GraphicsType == "direct"
		pt = append(pt, &types.HostPciPassthruInfo{
			Id:              g.PciID,
			DependentDevice: g.PciID,
			PassthruEnabled: enabled,
			PassthruCapable: true,
			PassthruActive:  enabled,
		})
	}
	hs.Config.GraphicsInfo = gi
	hs.Config.GraphicsConfig = gc
	hs.Config.SharedPassthruGpuTypes = h.sortedProfiles()
	hs.Config.PciPassthruInfo = pt

	// ---- runtime ----
	hs.Runtime.ConnectionState = types.HostSystemConnectionState(h.ConnectionState)
	hs.Runtime.InMaintenanceMode = h.Maintenance
	switch h.ConnectionState {
	case "connected":
		hs.Summary.OverallStatus = types.ManagedEntityStatusGreen
	default:
		hs.Summary.OverallStatus = types.ManagedEntityStatusGray
	}
	// hs.Summary.Runtime points at hs.Runtime (see simulator.NewHostSystem)
}
