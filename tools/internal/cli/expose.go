package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
)

func (s *session) newExposeCommand() *cobra.Command {
	var port, targetPort int
	var name string
	cmd := &cobra.Command{
		Use:   "expose deployment NAME --port P [--target-port TP] [--name SVC]",
		Short: "Create a Service that selects a Deployment's pods",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, dname, err := workloadTarget(args, "Deployment")
			if err != nil {
				return err
			}
			if port < 1 || port > 65535 {
				return fmt.Errorf("--port: %d: must be between 1 and 65535", port)
			}
			if targetPort == 0 {
				targetPort = port
			}
			if targetPort < 1 || targetPort > 65535 {
				return fmt.Errorf("--target-port: %d: must be between 1 and 65535", targetPort)
			}
			ns, err := s.namespace()
			if err != nil {
				return err
			}
			conn, err := s.connect()
			if err != nil {
				return err
			}
			d, err := client.For[*appsv1.Deployment](conn).Get(cmd.Context(), ns, dname)
			if err != nil {
				return err
			}
			sel := d.GetSpec().GetSelector()
			if len(sel.GetMatchExpressions()) > 0 || len(sel.GetMatchLabels()) == 0 {
				return fmt.Errorf("deployment %q selects its pods with expressions; a Service selector needs plain labels", dname)
			}
			if name == "" {
				name = dname
			}
			svc := &corev1.Service{
				Metadata: &metav1.ObjectMeta{Name: name, Namespace: ns, Labels: d.GetMetadata().GetLabels()},
				Spec: &corev1.ServiceSpec{
					Selector: sel.GetMatchLabels(),
					Ports: []*corev1.ServicePort{{Port: int32(port), Protocol: "TCP",
						TargetPort: &metav1.IntOrString{IntVal: int32(targetPort)}}},
				},
			}
			if _, err := client.For[*corev1.Service](conn).Create(cmd.Context(), svc); err != nil {
				return err
			}
			fmt.Fprintf(s.deps.Stdout, "service/%s exposed\n", name)
			return nil
		},
	}
	cmd.Flags().IntVar(&port, "port", 0, "the Service's port (required)")
	cmd.Flags().IntVar(&targetPort, "target-port", 0, "the pods' port (default: --port)")
	cmd.Flags().StringVar(&name, "name", "", "the Service's name (default: the Deployment's)")
	return cmd
}
