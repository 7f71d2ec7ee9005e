package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
)

func (s *session) newRunCommand() *cobra.Command {
	var image string
	var port, replicas int
	cmd := &cobra.Command{
		Use:   "run NAME --image IMG [--port P] [--replicas N]",
		Short: "Run an image as a Deployment labelled app=NAME",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := runDeployment(args[0], image, port, replicas)
			if err != nil {
				return err
			}
			ns, err := s.namespace()
			if err != nil {
				return err
			}
			d.Metadata.Namespace = ns
			conn, err := s.connect()
			if err != nil {
				return err
			}
			if _, err := client.For[*appsv1.Deployment](conn).Create(cmd.Context(), d); err != nil {
				return err
			}
			fmt.Fprintf(s.deps.Stdout, "deployment.apps/%s created\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&image, "image", "", "container image (required)")
	cmd.Flags().IntVar(&port, "port", 0, "container port to declare")
	cmd.Flags().IntVar(&replicas, "replicas", 1, "number of replicas")
	return cmd
}

// runDeployment builds the Deployment `bosun run` creates.
func runDeployment(name, image string, port, replicas int) (*appsv1.Deployment, error) {
	switch {
	case image == "":
		return nil, fmt.Errorf("--image is required")
	case replicas < 0:
		return nil, fmt.Errorf("--replicas: %d: must be 0 or more", replicas)
	case port < 0 || port > 65535:
		return nil, fmt.Errorf("--port: %d: must be between 1 and 65535", port)
	}
	labels := map[string]string{"app": name}
	c := &corev1.Container{Name: name, Image: image}
	if port > 0 {
		c.Ports = []*corev1.ContainerPort{{ContainerPort: int32(port), Protocol: "TCP"}}
	}
	return &appsv1.Deployment{
		Metadata: &metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: &appsv1.DeploymentSpec{
			Replicas: proto.Int32(int32(replicas)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: &corev1.PodTemplateSpec{
				Metadata: &metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:     &corev1.PodSpec{Containers: []*corev1.Container{c}},
			},
		},
	}, nil
}
