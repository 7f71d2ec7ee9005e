package server_test

import (
	"context"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	"bosun.dev/pkg/server"
)

// A handler may send a message it encoded once (server.PreEncoded) next to
// ordinary ones; the client receives both as the messages they encode.
func TestPreEncodedMessagesArriveAsSent(t *testing.T) {
	srv, err := server.New(server.Options{
		Name: "test", GRPCListen: "127.0.0.1:0",
		Logger: server.NewLogger("error", io.Discard), ShutdownTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	shared, err := proto.Marshal(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
	if err != nil {
		t.Fatal(err)
	}
	srv.GRPC().RegisterService(&grpc.ServiceDesc{
		ServiceName: "bosun.test.Fanout", HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{StreamName: "Send", ServerStreams: true, Handler: func(_ any, stream grpc.ServerStream) error {
			var req healthpb.HealthCheckRequest
			if err := stream.RecvMsg(&req); err != nil {
				return err
			}
			if err := stream.SendMsg(server.PreEncoded(shared)); err != nil {
				return err
			}
			if err := stream.SendMsg(server.PreEncoded(shared)); err != nil {
				return err
			}
			return stream.SendMsg(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING})
		}}},
	}, struct{}{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/bosun.test.Fanout/Send")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.SendMsg(&healthpb.HealthCheckRequest{Service: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	want := []healthpb.HealthCheckResponse_ServingStatus{
		healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING,
	}
	for i, status := range want {
		var got healthpb.HealthCheckResponse
		if err := stream.RecvMsg(&got); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if got.GetStatus() != status {
			t.Fatalf("message %d: status %v, want %v", i, got.GetStatus(), status)
		}
	}
	if err := stream.RecvMsg(&healthpb.HealthCheckResponse{}); err != io.EOF {
		t.Fatalf("after the last message: %v, want io.EOF", err)
	}
}
