// Package nodeproxy serves bosun.core.v1.NodeAgentService on the apiserver
// by forwarding each call to the node-agent that can answer it, the way
// kube-apiserver forwards `kubectl logs` to the kubelet: callers need only
// the apiserver's address and credentials, and the apiserver's
// authentication, authorization and audit apply.
//
// ContainerLogs goes to the node the pod is bound to (spec.nodeName);
// LoadImages to the node named in its first message. A node-agent's address
// is its Node's annotation health.bosun.dev/endpoint when set, else the
// Node's InternalIP with status.daemonEndpoints.kubeletEndpoint.port.
//
// Authorization (see Attributes): ContainerLogs is the verb get on the
// subresource pods/log of the pod in its namespace; LoadImages is the verb
// create on the subresource nodes/images of the node.
//
// Errors: an unknown pod or node is NOT_FOUND; a pod not yet bound to a node
// is FAILED_PRECONDITION; a node whose node-agent cannot be reached (or that
// publishes no address) is UNAVAILABLE naming the node and the address.
// Every other error is the node-agent's own, passed through unchanged.
package nodeproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/services/apiserver/internal/authz"
)

// EndpointAnnotation on a Node names its node-agent's gRPC address
// (host:port); it overrides the address derived from the Node's status.
const EndpointAnnotation = "health.bosun.dev/endpoint"

// The proxied methods, as gRPC names them.
const (
	MethodContainerLogs = "/bosun.core.v1.NodeAgentService/ContainerLogs"
	MethodLoadImages    = "/bosun.core.v1.NodeAgentService/LoadImages"
)

// SubresourceLog and SubresourceImages are the subresources RBAC rules name
// for the proxied calls: "pods/log" and "nodes/images".
const (
	SubresourceLog    = "log"
	SubresourceImages = "images"
)

// maxMessageSize bounds one forwarded message, as pkg/client does.
const maxMessageSize = 256 << 20

// Objects reads the pods and nodes calls are routed by.
type Objects interface {
	// Cached returns the watch cache's copy of an object, shared and
	// read-only, and whether it was there.
	Cached(k *api.Kind, namespace, name string) (api.Object, bool)
	// Get reads an object from storage, for objects the watch cache has
	// not seen yet; an absent object is a NOT_FOUND error.
	Get(ctx context.Context, k *api.Kind, namespace, name string) (api.Object, error)
}

// Config configures a Proxy.
type Config struct {
	// Objects finds pods and nodes.
	Objects Objects
	// TLS secures the connections to node-agents: RootCAs verify their
	// serving certificates and a client certificate, when set, identifies
	// the apiserver to node-agents that require one. Nil dials plaintext,
	// for node-agents started with --insecure.
	TLS *tls.Config
	// ConnectTimeout bounds connecting to a node-agent; 5s when zero.
	ConnectTimeout time.Duration
	// Logger; default discards.
	Logger *slog.Logger
}

// Proxy serves NodeAgentService by forwarding to node-agents. It keeps one
// connection per node and replaces it when the node's address changes.
type Proxy struct {
	corev1.UnimplementedNodeAgentServiceServer

	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	conns map[string]*nodeConn // by node name
}

type nodeConn struct {
	addr string
	conn *grpc.ClientConn
}

var _ corev1.NodeAgentServiceServer = (*Proxy)(nil)

// New returns a Proxy.
func New(cfg Config) *Proxy {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Proxy{cfg: cfg, log: log, conns: map[string]*nodeConn{}}
}

// Register serves the proxy on s.
func (p *Proxy) Register(s *grpc.Server) { corev1.RegisterNodeAgentServiceServer(s, p) }

// Close closes every connection to node-agents.
func (p *Proxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, c := range p.conns {
		_ = c.conn.Close()
		delete(p.conns, name)
	}
}

// Attributes describes a proxied call for authorization and audit from its
// first request message: ContainerLogs is get on pods/log of the pod,
// LoadImages create on nodes/images of the node. It also returns the request
// as audit may record it (LoadImages without its data). ok is false for
// methods the proxy does not serve.
func Attributes(fullMethod string, req proto.Message) (a authz.Attributes, audited proto.Message, ok bool) {
	switch fullMethod {
	case MethodContainerLogs:
		r, _ := req.(*corev1.ContainerLogsRequest)
		return authz.Attributes{Verb: authz.VerbGet, Kind: authz.PodKind, Subresource: SubresourceLog,
			Namespace: r.GetNamespace(), Name: r.GetPod()}, req, true
	case MethodLoadImages:
		r, _ := req.(*corev1.LoadImagesRequest)
		return authz.Attributes{Verb: authz.VerbCreate, Kind: authz.NodeKind, Subresource: SubresourceImages,
			Name: r.GetNode()}, &corev1.LoadImagesRequest{Node: r.GetNode()}, true
	}
	return authz.Attributes{}, nil, false
}

// Proxied reports whether the proxy serves fullMethod.
func Proxied(fullMethod string) bool {
	return fullMethod == MethodContainerLogs || fullMethod == MethodLoadImages
}

// ContainerLogs forwards to the node-agent of the pod's node.
func (p *Proxy) ContainerLogs(req *corev1.ContainerLogsRequest, stream grpc.ServerStreamingServer[corev1.ContainerLogsResponse]) error {
	ctx := stream.Context()
	if req.GetNamespace() == "" {
		return apierrors.BadRequest("namespace: Required value")
	}
	if req.GetPod() == "" {
		return apierrors.BadRequest("pod: Required value")
	}
	node, err := p.podNode(ctx, req.GetNamespace(), req.GetPod())
	if err != nil {
		return err
	}
	target, err := p.target(ctx, node)
	if err != nil {
		return err
	}
	up, err := corev1.NewNodeAgentServiceClient(target.conn).ContainerLogs(ctx, req)
	if err != nil {
		return target.wrap(node, err)
	}
	for {
		m, err := up.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return target.wrap(node, err)
		}
		if err := stream.Send(m); err != nil {
			return err
		}
	}
}

// LoadImages forwards the upload, chunk by chunk in order, to the
// node-agent of the node named in the first message.
func (p *Proxy) LoadImages(stream grpc.ClientStreamingServer[corev1.LoadImagesRequest, corev1.LoadImagesResponse]) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return apierrors.BadRequest("node: Required value: the upload sent no message")
	}
	if err != nil {
		return err
	}
	node := first.GetNode()
	if node == "" {
		return apierrors.BadRequest("node: Required value: the first message names the node to load into")
	}
	target, err := p.target(ctx, node)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	up, err := corev1.NewNodeAgentServiceClient(target.conn).LoadImages(ctx)
	if err != nil {
		return target.wrap(node, err)
	}
	for msg := first; ; {
		if err := up.Send(msg); err != nil {
			// The node-agent ended the call; CloseAndRecv says why.
			break
		}
		msg, err = stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err // the caller went away; cancel ends the upload
		}
	}
	resp, err := up.CloseAndRecv()
	if err != nil {
		return target.wrap(node, err)
	}
	return stream.SendAndClose(resp)
}

// podNode returns the node a pod is bound to.
func (p *Proxy) podNode(ctx context.Context, namespace, name string) (string, error) {
	if obj, ok := p.cfg.Objects.Cached(authz.PodKind, namespace, name); ok {
		if node := obj.(*corev1.Pod).GetSpec().GetNodeName(); node != "" {
			return node, nil
		}
	}
	// Not in the watch cache, or not bound there yet: storage is the truth.
	obj, err := p.cfg.Objects.Get(ctx, authz.PodKind, namespace, name)
	if err != nil {
		return "", err
	}
	node := obj.(*corev1.Pod).GetSpec().GetNodeName()
	if node == "" {
		return "", status.Errorf(codes.FailedPrecondition, "pod %q in namespace %q is not bound to a node yet: it has no logs", name, namespace)
	}
	return node, nil
}

// target is a node-agent to forward to.
type target struct {
	addr string
	conn *grpc.ClientConn
}

// wrap names the node and address in an UNAVAILABLE error from the
// node-agent's connection; other errors pass through unchanged.
func (t target) wrap(node string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	if st.Code() == codes.Unavailable {
		return status.Errorf(codes.Unavailable, "node %q: node-agent at %s is unreachable: %s", node, t.addr, st.Message())
	}
	return err
}

// target returns a connection to node's node-agent.
func (p *Proxy) target(ctx context.Context, node string) (target, error) {
	obj, ok := p.cfg.Objects.Cached(authz.NodeKind, "", node)
	if !ok {
		var err error
		if obj, err = p.cfg.Objects.Get(ctx, authz.NodeKind, "", node); err != nil {
			return target{}, err
		}
	}
	addr := Endpoint(obj.(*corev1.Node))
	if addr == "" {
		return target{}, status.Errorf(codes.Unavailable, "node %q publishes no node-agent address (annotation %s, or an InternalIP and status.daemonEndpoints.kubeletEndpoint.port)", node, EndpointAnnotation)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[node]; ok {
		if c.addr == addr {
			return target{addr: addr, conn: c.conn}, nil
		}
		_ = c.conn.Close()
		delete(p.conns, node)
	}
	var creds credentials.TransportCredentials = insecure.NewCredentials()
	if p.cfg.TLS != nil {
		// The node-agent's certificate names its Node (see pki.CA.SignNode
		// and `bosun certs init`): verify that name, not the address, so a
		// node cannot answer for another.
		tc := p.cfg.TLS.Clone()
		tc.ServerName = node
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{
			BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second,
		}, MinConnectTimeout: p.cfg.ConnectTimeout}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageSize), grpc.MaxCallSendMsgSize(maxMessageSize)),
	)
	if err != nil {
		return target{}, status.Errorf(codes.Unavailable, "node %q: node-agent address %q: %v", node, addr, err)
	}
	p.log.Debug("connecting to node-agent", "node", node, "addr", addr)
	p.conns[node] = &nodeConn{addr: addr, conn: conn}
	return target{addr: addr, conn: conn}, nil
}

// Endpoint is the gRPC address of n's node-agent: the EndpointAnnotation
// when set, else the first InternalIP with the port of
// status.daemonEndpoints.kubeletEndpoint. "" when n publishes neither.
func Endpoint(n *corev1.Node) string {
	if a := n.GetMetadata().GetAnnotations()[EndpointAnnotation]; a != "" {
		return a
	}
	port := n.GetStatus().GetDaemonEndpoints().GetKubeletEndpoint().GetPort()
	if port <= 0 {
		return ""
	}
	for _, a := range n.GetStatus().GetAddresses() {
		if a.GetType() == "InternalIP" && a.GetAddress() != "" {
			return net.JoinHostPort(a.GetAddress(), strconv.Itoa(int(port)))
		}
	}
	return ""
}
