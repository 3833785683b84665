package main

// Two PropertyCollector fixes for vcsim 0.24.2.
//
// 1. Authentication: vcsim serves RetrieveProperties, RetrievePropertiesEx and Fetch without a
// login session (see Service.call). A real vCenter answers NotAuthenticated; so do we, so that
// an expired/missing session is detected the same way (only ServiceInstance.content stays open).
//
// 2. A vcsim 0.24.2 bug: PropertyCollector.Fetch (used by pyvmomi's lazy attribute
// access, e.g. `host.capability`) panics with "index out of range" when the property is unset
// (nil), and the client sees the connection dropped (http.client.RemoteDisconnected). A real
// vCenter returns an empty <returnval/>, which pyvmomi turns into None.
//
// The PropertyCollector singleton is replaced in the registry by a wrapper type that embeds the
// simulator's PropertyCollector by value (vcsim clones the singleton per session with
// reflect.New of the registered type, see Session.Get) and overrides Fetch.

import (
	"reflect"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

type gpulabPropertyCollector struct {
	simulator.PropertyCollector
}

// FetchResponse mirrors the simulator's internal FetchResponse; the type name becomes the SOAP
// element name, so it must be exactly "FetchResponse".
type FetchResponse struct {
	Returnval types.AnyType `xml:"returnval,omitempty,typeattr"`
}

type fetchBody struct {
	Res    *FetchResponse `xml:"FetchResponse,omitempty"`
	Fault_ *soap.Fault    `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault,omitempty"`
}

func (b *fetchBody) Fault() *soap.Fault { return b.Fault_ }

// Fetch takes the request as interface{} because its type lives in a Go internal package;
// reflect.Value.Call accepts the *internal.Fetch value the dispatcher passes.
func (pc *gpulabPropertyCollector) Fetch(ctx *simulator.Context, req interface{}) soap.HasFault {
	rv := reflect.ValueOf(req).Elem()
	this, _ := rv.FieldByName("This").Interface().(types.ManagedObjectReference)
	prop, _ := rv.FieldByName("Prop").Interface().(string)

	if ctx.Session == nil && this.Type != "ServiceInstance" {
		return &fetchBody{Fault_: notAuthenticated(pc.Self)}
	}

	if this.Type != "" && this.Type != "ServiceInstance" && prop != "" && ctx.Map.Get(this) != nil {
		res := pc.PropertyCollector.RetrievePropertiesEx(ctx, &types.RetrievePropertiesEx{
			SpecSet: []types.PropertyFilterSpec{{
				PropSet:   []types.PropertySpec{{Type: this.Type, PathSet: []string{prop}}},
				ObjectSet: []types.ObjectSpec{{Obj: this}},
			}}})
		if res.Fault() == nil {
			if body, ok := res.(*methods.RetrievePropertiesExBody); ok && body.Res != nil {
				rval := body.Res.Returnval
				if rval == nil || len(rval.Objects) == 0 ||
					(len(rval.Objects[0].PropSet) == 0 && len(rval.Objects[0].MissingSet) == 0) {
					return &fetchBody{Res: &FetchResponse{}} // unset property
				}
			}
		}
	}
	// everything else: the simulator's own implementation
	orig := reflect.ValueOf(&pc.PropertyCollector).MethodByName("Fetch")
	out := orig.Call([]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(req)})
	return out[0].Interface().(soap.HasFault)
}

func notAuthenticated(obj types.ManagedObjectReference) *soap.Fault {
	return simulator.Fault("The session is not authenticated.", &types.NotAuthenticated{
		NoPermission: types.NoPermission{Object: obj, PrivilegeId: "System.View"},
	})
}

func (pc *gpulabPropertyCollector) RetrievePropertiesEx(ctx *simulator.Context, req *types.RetrievePropertiesEx) soap.HasFault {
	if ctx.Session == nil {
		return &methods.RetrievePropertiesExBody{Fault_: notAuthenticated(pc.Self)}
	}
	return pc.PropertyCollector.RetrievePropertiesEx(ctx, req)
}

func (pc *gpulabPropertyCollector) RetrieveProperties(ctx *simulator.Context, req *types.RetrieveProperties) soap.HasFault {
	if ctx.Session == nil {
		return &methods.RetrievePropertiesBody{Fault_: notAuthenticated(pc.Self)}
	}
	return pc.PropertyCollector.RetrieveProperties(ctx, req)
}

func installPropertyCollectorFixes() {
	si := simulator.Map.Get(vim25.ServiceInstance).(*simulator.ServiceInstance)
	w := &gpulabPropertyCollector{}
	w.Self = si.Content.PropertyCollector
	simulator.Map.Put(w)
}
