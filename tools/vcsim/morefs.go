package main

// Stable managed object references (morefs).
//
// vcsim names every object it creates from one registry counter ("host-44" is the 44th reference
// handed out), so removing a host or VM from a lab renamed every object created after it, while a
// vCenter never changes an object's moref and clients key their inventory by it. No vcsim create
// method takes a preset reference (Registry.NewEntity clears Self.Value of a new host; datacenters,
// clusters and VMs are allocated inside their create methods), so gpulab chooses the counter value
// instead: before creating a lab object it moves the counter to the start of a block of refStride
// numbers picked by a hash of the object's kind and name. Everything that creation allocates (its
// task, the host's config managers, resource pool, compute resource, the VM, ...) lands in that
// block, in the same order for every object of a kind, so each moref depends on its object's name
// only.

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"unsafe"

	"github.com/vmware/govmomi/simulator"
)

const (
	refStride      = 64      // numbers reserved per lab object; adding a host allocates about 15
	refBlocks      = 1 << 40 // blocks the name hash chooses from: collisions are practically impossible
	refFloorBlocks = 1 << 16 // blocks below this one are left to vcsim's own startup objects
)

// refAllocator moves simulator.Map's private reference counter (govmomi 0.24's Registry.counter).
type refAllocator struct {
	counter *int64
	used    map[uint64]string // block -> the object that took it
	high    int64             // highest number handed out inside a block
}

// newRefAllocator must be called after Model.Create, which replaces simulator.Map.
func newRefAllocator() (*refAllocator, error) {
	field := reflect.ValueOf(simulator.Map).Elem().FieldByName("counter")
	if !field.IsValid() || field.Kind() != reflect.Int64 {
		return nil, errors.New("stable morefs: simulator.Registry has no int64 field \"counter\" " +
			"(gpulab is written for govmomi 0.24's simulator)")
	}
	a := &refAllocator{counter: (*int64)(unsafe.Pointer(field.UnsafeAddr())), used: map[uint64]string{}}
	if n := atomic.LoadInt64(a.counter); n >= refFloorBlocks*refStride {
		return nil, fmt.Errorf("stable morefs: vcsim already handed out %d references at startup", n)
	}
	return a, nil
}

func refBlock(kind, name string) uint64 {
	sum := sha256.Sum256([]byte(kind + "\x00" + name))
	return binary.BigEndian.Uint64(sum[:8]) % refBlocks
}

// within runs create with the counter at the block of (kind, name) plus skip, and fails if the
// creation allocated more numbers than a block holds (the next block's object would then get them).
func (a *refAllocator) within(kind, name string, skip int64, create func() error) error {
	block := refBlock(kind, name)
	for a.used[block] != "" { // a hash collision: take the next free block
		block = (block + 1) % refBlocks
	}
	a.used[block] = kind + " " + name
	base := int64(refFloorBlocks+block) * refStride
	atomic.StoreInt64(a.counter, base+skip)
	if err := create(); err != nil {
		return err
	}
	end := atomic.LoadInt64(a.counter)
	if end-base > refStride {
		return fmt.Errorf("stable morefs: creating %s %q allocated %d references, more than the %d reserved per object",
			kind, name, end-base, refStride)
	}
	if end > a.high {
		a.high = end
	}
	return nil
}

// done moves the counter above every block, so the objects clients create later (sessions,
// property filters, views, tasks) never reuse a lab object's number.
func (a *refAllocator) done() {
	if atomic.LoadInt64(a.counter) < a.high {
		atomic.StoreInt64(a.counter, a.high)
	}
}
