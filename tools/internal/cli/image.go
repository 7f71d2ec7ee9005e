package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

// loadChunk is the size of one upload message.
const loadChunk = 1 << 20

func (s *session) newImageCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage images on nodes",
	}
	var node string
	load := &cobra.Command{
		Use:   "load --node NODE FILE...",
		Short: "Load OCI image-layout tarballs into a node's runtime",
		Long: "Upload OCI image-layout tarballs through the apiserver to the node-agent of a node,\n" +
			"for nodes that cannot reach a registry (needs create on nodes/images: cluster-admin).\n" +
			"Pods then run the images with imagePullPolicy IfNotPresent or Never.",
		Example: "  bosun image load --node worker-1 hello-v1.tar",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if node == "" {
				return errors.New("--node is required: name the node to load the images into")
			}
			for _, path := range args {
				if err := s.imageLoad(cmd.Context(), node, path); err != nil {
					return err
				}
			}
			return nil
		},
	}
	load.Flags().StringVar(&node, "node", "", "node to load the images into")
	cmd.AddCommand(load)
	return cmd
}

func (s *session) imageLoad(ctx context.Context, node, path string) error {
	conn, err := s.connect()
	if err != nil {
		return err
	}
	resp, err := uploadImages(ctx, conn, node, path)
	err = notProxied(err)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, img := range resp.GetImages() {
		fmt.Fprintf(s.deps.Stdout, "Loaded image %s (%d bytes) on node %s\n", img.GetNames()[0], img.GetSizeBytes(), node)
	}
	return nil
}

func uploadImages(ctx context.Context, conn grpc.ClientConnInterface, node, path string) (*corev1.LoadImagesResponse, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	up, err := corev1.NewNodeAgentServiceClient(conn).LoadImages(ctx)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, loadChunk)
	first := true
	for {
		n, rerr := f.Read(buf)
		if n > 0 || first {
			req := &corev1.LoadImagesRequest{Data: buf[:n]}
			if first {
				req.Node, first = node, false
			}
			if err := up.Send(req); err != nil {
				break // the server ended the call; CloseAndRecv says why
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return nil, rerr
		}
	}
	return up.CloseAndRecv()
}
