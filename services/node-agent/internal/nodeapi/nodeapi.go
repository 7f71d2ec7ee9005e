// Package nodeapi serves bosun.core.v1.NodeAgentService, the node-agent's
// own API next to its gRPC health: container logs (package logs) and image
// loads from OCI tarballs (package images).
package nodeapi

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/node-agent/internal/logs"
	"bosun.dev/services/node-agent/internal/runtime"
)

// Loader imports OCI tarballs, as images.Manager does.
type Loader interface {
	Load(ctx context.Context, r io.Reader) ([]runtime.Image, error)
}

// Backend is what the server needs from the running agent.
type Backend struct {
	// NodeName is this node; LoadImages refuses requests for another.
	NodeName string
	Logs     *logs.Backend
	Images   Loader
	// TempDir holds uploads while they are imported.
	TempDir string
}

// Server serves NodeAgentService. Until SetBackend is called it answers
// UNAVAILABLE.
type Server struct {
	corev1.UnimplementedNodeAgentServiceServer

	mu      sync.RWMutex
	backend *Backend
	// Poll is how often a followed log is checked for new output.
	Poll time.Duration
	// Callers are the users (client certificates' common names) allowed to
	// call NodeAgentService over TLS: the apiserver, which authorizes the
	// cluster's users itself (pods/log, nodes/images) before it proxies.
	// Any other certificate of the cluster CA, a node's or a viewer's, is
	// refused, so that the node-agent is no way around RBAC. Empty allows
	// every caller the listener accepts; plaintext (--insecure) has no
	// identity to check and is allowed.
	Callers []string
}

// authorize refuses callers other than Callers.
func (s *Server) authorize(ctx context.Context) error {
	if len(s.Callers) == 0 {
		return nil
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return status.Error(codes.PermissionDenied, "no peer")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil // plaintext: the listener was started with --insecure
	}
	if len(info.State.PeerCertificates) == 0 {
		return status.Error(codes.Unauthenticated, "a client certificate is required")
	}
	user := info.State.PeerCertificates[0].Subject.CommonName
	if !slices.Contains(s.Callers, user) {
		return status.Errorf(codes.PermissionDenied, "user %q may not call the node-agent's API (allowed: %s); go through the apiserver (bosun logs, bosun image load)",
			user, strings.Join(s.Callers, ", "))
	}
	return nil
}

// Register adds a new Server to s and returns it.
func Register(s *grpc.Server) *Server {
	srv := &Server{Poll: 100 * time.Millisecond}
	corev1.RegisterNodeAgentServiceServer(s, srv)
	return srv
}

// SetBackend makes the server answer.
func (s *Server) SetBackend(b *Backend) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backend = b
}

func (s *Server) get() (*Backend, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.backend == nil {
		return nil, status.Error(codes.Unavailable, "node-agent is starting")
	}
	return s.backend, nil
}

// ContainerLogs streams a container's log.
func (s *Server) ContainerLogs(req *corev1.ContainerLogsRequest, stream grpc.ServerStreamingServer[corev1.ContainerLogsResponse]) error {
	if err := s.authorize(stream.Context()); err != nil {
		return err
	}
	b, err := s.get()
	if err != nil {
		return err
	}
	return logs.Stream(stream.Context(), b.Logs, req, func(p []byte) error {
		return stream.Send(&corev1.ContainerLogsResponse{Data: p})
	}, s.Poll)
}

// LoadImages stores the uploaded tarball in a temporary file and imports it.
func (s *Server) LoadImages(stream grpc.ClientStreamingServer[corev1.LoadImagesRequest, corev1.LoadImagesResponse]) error {
	if err := s.authorize(stream.Context()); err != nil {
		return err
	}
	b, err := s.get()
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if n := first.GetNode(); n != "" && n != b.NodeName {
		return status.Errorf(codes.InvalidArgument, "node: %q is not this node (%s)", n, b.NodeName)
	}
	f, err := os.CreateTemp(b.TempDir, "load-*.tar")
	if err != nil {
		return status.Errorf(codes.Internal, "temporary file: %v", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	for msg := first; ; {
		if _, err := f.Write(msg.GetData()); err != nil {
			return status.Errorf(codes.Internal, "storing the upload: %v", err)
		}
		msg, err = stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return status.Errorf(codes.Internal, "reading the upload: %v", err)
	}
	imgs, err := b.Images.Load(stream.Context(), f)
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "loading images: %v", err)
	}
	resp := &corev1.LoadImagesResponse{}
	for _, img := range imgs {
		resp.Images = append(resp.Images, &corev1.ContainerImage{Names: []string{img.Ref}, SizeBytes: img.Size})
	}
	if len(resp.Images) == 0 {
		return status.Error(codes.InvalidArgument, "loading images: the tarball holds no image")
	}
	return stream.SendAndClose(resp)
}
