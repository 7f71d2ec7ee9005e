// Package apiservice serves the registry over gRPC. Every kind's service
// (PodService, DeploymentService, ...) is bound from its descriptor: the
// request and response messages follow one convention (see docs/api.md), so
// one handler per verb serves every kind, and a new kind needs no code here.
package apiservice

import (
	"context"
	"fmt"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/server"
	"bosun.dev/services/apiserver/internal/registry"
	"bosun.dev/services/apiserver/internal/watchcache"
)

// Register registers one gRPC service per kind on s, a server built by
// pkg/server: watches send events as server.PreEncoded, which its codec
// passes through.
func Register(s grpc.ServiceRegistrar, reg *registry.Registry) {
	for _, k := range api.Kinds() {
		s.RegisterService(serviceDesc(k, reg.Resource(k)), struct{}{})
	}
}

type unaryFunc func(ctx context.Context, req protoreflect.Message) (proto.Message, error)

func serviceDesc(k *api.Kind, res *registry.Resource) *grpc.ServiceDesc {
	sd := &grpc.ServiceDesc{
		ServiceName: string(k.Service.FullName()),
		HandlerType: (*any)(nil),
		Metadata:    k.Service.ParentFile().Path(),
	}
	b := binder{kind: k, res: res}
	unary := map[api.Verb]unaryFunc{
		api.VerbGet: b.get, api.VerbList: b.list, api.VerbCreate: b.create, api.VerbUpdate: b.update,
		api.VerbUpdateStatus: b.updateStatus, api.VerbDelete: b.delete, api.VerbBind: b.bind,
	}
	for verb, fn := range unary {
		md := k.Method(verb)
		if md == nil {
			continue
		}
		sd.Methods = append(sd.Methods, grpc.MethodDesc{MethodName: string(md.Name()), Handler: unaryHandler(k.FullMethod(verb), md, fn)})
	}
	watch := k.Method(api.VerbWatch)
	sd.Streams = append(sd.Streams, grpc.StreamDesc{
		StreamName: string(watch.Name()), ServerStreams: true,
		Handler: func(_ any, stream grpc.ServerStream) error {
			req := newMessage(watch.Input())
			if err := stream.RecvMsg(req.Interface()); err != nil {
				return err
			}
			return b.watch(stream, req, watch.Output())
		},
	})
	return sd
}

func unaryHandler(fullMethod string, md protoreflect.MethodDescriptor, fn unaryFunc) func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		req := newMessage(md.Input())
		if err := dec(req.Interface()); err != nil {
			return nil, err
		}
		call := func(ctx context.Context, r any) (any, error) {
			return fn(ctx, r.(proto.Message).ProtoReflect())
		}
		if interceptor == nil {
			return call(ctx, req.Interface())
		}
		return interceptor(ctx, req.Interface(), &grpc.UnaryServerInfo{Server: srv, FullMethod: fullMethod}, call)
	}
}

type binder struct {
	kind *api.Kind
	res  *registry.Resource
}

func (b binder) respond(verb api.Verb, obj api.Object) (proto.Message, error) {
	resp := newMessage(b.kind.Method(verb).Output())
	resp.Set(resp.Descriptor().Fields().ByNumber(1), protoreflect.ValueOfMessage(obj.ProtoReflect()))
	return resp.Interface(), nil
}

func (b binder) get(ctx context.Context, req protoreflect.Message) (proto.Message, error) {
	obj, err := b.res.Get(ctx, str(req, "namespace"), str(req, "name"))
	if err != nil {
		return nil, err
	}
	return b.respond(api.VerbGet, obj)
}

func (b binder) list(ctx context.Context, req protoreflect.Message) (proto.Message, error) {
	res, err := b.res.List(ctx, registry.ListOptions{
		Namespace: str(req, "namespace"), LabelSelector: str(req, "label_selector"), FieldSelector: str(req, "field_selector"),
		PageSize: int32(req.Get(req.Descriptor().Fields().ByName("page_size")).Int()), PageToken: str(req, "page_token"),
	})
	if err != nil {
		return nil, err
	}
	resp := newMessage(b.kind.Method(api.VerbList).Output())
	fields := resp.Descriptor().Fields()
	items := resp.Mutable(fields.ByNumber(1)).List()
	for _, obj := range res.Items {
		items.Append(protoreflect.ValueOfMessage(obj.ProtoReflect()))
	}
	resp.Set(fields.ByName("resource_version"), protoreflect.ValueOfString(fmt.Sprint(res.Revision)))
	if res.Continue != "" {
		resp.Set(fields.ByName("next_page_token"), protoreflect.ValueOfString(res.Continue))
	}
	return resp.Interface(), nil
}

func (b binder) object(req protoreflect.Message) api.Object {
	fd := req.Descriptor().Fields().ByNumber(1)
	if !req.Has(fd) {
		return b.kind.New()
	}
	return req.Get(fd).Message().Interface().(api.Object)
}

func (b binder) create(ctx context.Context, req protoreflect.Message) (proto.Message, error) {
	obj, err := b.res.Create(ctx, b.object(req))
	if err != nil {
		return nil, err
	}
	return b.respond(api.VerbCreate, obj)
}

func (b binder) update(ctx context.Context, req protoreflect.Message) (proto.Message, error) {
	obj, err := b.res.Update(ctx, b.object(req))
	if err != nil {
		return nil, err
	}
	return b.respond(api.VerbUpdate, obj)
}

func (b binder) updateStatus(ctx context.Context, req protoreflect.Message) (proto.Message, error) {
	obj, err := b.res.UpdateStatus(ctx, b.object(req))
	if err != nil {
		return nil, err
	}
	return b.respond(api.VerbUpdateStatus, obj)
}

func (b binder) delete(ctx context.Context, req protoreflect.Message) (proto.Message, error) {
	fields := req.Descriptor().Fields()
	opts := registry.DeleteOptions{
		Propagation: metav1.DeletePropagation(req.Get(fields.ByName("propagation_policy")).Enum()),
	}
	if fd := fields.ByName("grace_period_seconds"); req.Has(fd) {
		g := req.Get(fd).Int()
		opts.GracePeriodSeconds = &g
	}
	if fd := fields.ByName("preconditions"); req.Has(fd) {
		opts.Preconditions = req.Get(fd).Message().Interface().(*metav1.Preconditions)
	}
	obj, err := b.res.Delete(ctx, str(req, "namespace"), str(req, "name"), opts)
	if err != nil {
		return nil, err
	}
	return b.respond(api.VerbDelete, obj)
}

func (b binder) bind(ctx context.Context, req protoreflect.Message) (proto.Message, error) {
	pod, err := b.res.Bind(ctx, str(req, "namespace"), str(req, "name"), str(req, "node_name"), str(req, "uid"))
	if err != nil {
		return nil, err
	}
	return b.respond(api.VerbBind, pod)
}

func (b binder) watch(stream grpc.ServerStream, req protoreflect.Message, out protoreflect.MessageDescriptor) error {
	opts := registry.WatchOptions{
		Namespace: str(req, "namespace"), LabelSelector: str(req, "label_selector"), FieldSelector: str(req, "field_selector"),
		ResourceVersion: str(req, "resource_version"),
		AllowBookmarks:  req.Get(req.Descriptor().Fields().ByName("allow_bookmarks")).Bool(),
	}
	fields := out.Fields()
	typeField, objField, rvField := fields.ByName("type"), fields.ByNumber(2), fields.ByName("resource_version")
	encode := func(e *watchcache.Event) ([]byte, error) {
		resp := newMessage(out)
		resp.Set(typeField, protoreflect.ValueOfEnum(protoreflect.EnumNumber(e.Type)))
		resp.Set(rvField, protoreflect.ValueOfString(strconv.FormatInt(e.Rev, 10)))
		if e.Object != nil {
			resp.Set(objField, protoreflect.ValueOfMessage(e.Object.ProtoReflect()))
		}
		return proto.Marshal(resp.Interface())
	}
	return b.res.Watch(stream.Context(), opts, func(e *watchcache.Event) error {
		// Every watcher of this kind receives the same bytes for an event:
		// marshal it once, not once per watcher.
		msg, err := e.Encoded(encode)
		if err != nil {
			return err
		}
		return stream.SendMsg(server.PreEncoded(msg))
	})
}

func str(m protoreflect.Message, name protoreflect.Name) string {
	fd := m.Descriptor().Fields().ByName(name)
	if fd == nil {
		return ""
	}
	return m.Get(fd).String()
}

func newMessage(d protoreflect.MessageDescriptor) protoreflect.Message {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(d.FullName())
	if err != nil {
		panic(fmt.Sprintf("apiservice: message %s is not linked in: %v", d.FullName(), err))
	}
	return mt.New()
}
