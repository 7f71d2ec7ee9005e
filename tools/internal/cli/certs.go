package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"sigs.k8s.io/yaml"

	certificatesv1 "bosun.dev/gen/bosun/certificates/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/pki"
)

// Users of Bosun's services, as the apiserver's built-in roles name them.
var serviceUsers = []string{"bosun-scheduler", "bosun-controller", "bosun-health-checker", "bosun-service-proxy"}

// certsOptions are `bosun certs init`'s flags.
type certsOptions struct {
	hosts  []string
	nodes  []string
	server string
}

func (s *session) newCertsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make the certificates of a cluster",
	}
	var o certsOptions
	initCmd := &cobra.Command{
		Use:   "init DIR",
		Short: "Create a cluster CA and a certificate for every component and an admin user",
		Long: `init writes into DIR (created if missing):

  ca.crt, ca.key                   the cluster CA (kept when DIR already has one)
  apiserver.crt, apiserver.key     the apiserver's serving certificate (--host adds names)
  apiserver-node-agent-client.crt, .key
                                   the apiserver's client certificate for node-agents
  bosun-scheduler.crt, .key        client (and serving) certificates of the services:
  bosun-controller.crt, .key         CN is the user the built-in roles are bound to
  bosun-health-checker.crt, .key
  bosun-service-proxy.crt, .key
  node-NAME.crt, node-NAME.key     one per --node: user system:node:NAME, group system:nodes;
                                   also the node-agent's serving certificate, for the name NAME
  admin.crt, admin.key             user admin in group system:masters
  admin.conf                       a bosun config file using admin.crt, for the
                                   apiserver at --server (default 127.0.0.1:6443)

Running it again keeps the CA and issues fresh certificates; running components
pick them up without a restart.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.server = s.flags.server
			if o.server == "" {
				o.server = "127.0.0.1:6443"
			}
			return certsInit(args[0], o, func(format string, a ...any) { fmt.Fprintf(s.deps.Stdout, format, a...) })
		},
	}
	host, _ := os.Hostname()
	initCmd.Flags().StringArrayVar(&o.hosts, "host", nil, "extra DNS name or IP of the apiserver's certificate (repeatable; localhost, 127.0.0.1 and the host name are always in)")
	initCmd.Flags().StringArrayVar(&o.nodes, "node", []string{host}, "node name to make a node-agent certificate for (repeatable)")
	cmd.AddCommand(initCmd, s.newCertsJoinCommand())
	return cmd
}

func (s *session) newCertsJoinCommand() *cobra.Command {
	var token, node, caFile string
	cmd := &cobra.Command{
		Use:   "join DIR",
		Short: "Get a node-agent's certificate from the apiserver with a bootstrap token",
		Long: `join makes a key for a node, sends a certificate request for
CN=system:node:NODE, O=system:nodes to the apiserver with a bootstrap token, and
writes DIR/node-NODE.crt, DIR/node-NODE.key and DIR/ca.crt. The apiserver signs
only for the node the token names: its token file lists the token as

  TOKEN,system:bootstrap:NODE,UID,"system:bootstrappers"

Run it again with the node's own certificate (--token "") to renew it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return s.certsJoin(cmd.Context(), args[0], node, token, caFile)
		},
	}
	host, _ := os.Hostname()
	cmd.Flags().StringVar(&token, "token", "", "bootstrap token (\"\": authenticate with the config's certificate instead)")
	cmd.Flags().StringVar(&node, "node", strings.ToLower(host), "node name")
	cmd.Flags().StringVar(&caFile, "ca-file", "", "cluster CA to trust (default: the config file's ca)")
	return cmd
}

func (s *session) certsJoin(ctx context.Context, dir, node, token, caFile string) error {
	if node == "" {
		return fmt.Errorf("certs join: --node must not be empty")
	}
	st, err := s.config()
	if err != nil {
		return err
	}
	cfg := st.clientConfig()
	if caFile != "" {
		cfg.CAFile = caFile
	}
	var extra []grpc.DialOption
	if token != "" {
		cfg.CertFile, cfg.KeyFile = "", ""
		extra = append(extra, grpc.WithPerRPCCredentials(client.BearerToken(token)))
	}
	conn, err := client.Dial(cfg, extra...)
	if err != nil {
		return err
	}
	defer conn.Close()
	csr, key, err := pki.NewNodeCertificateRequest(node)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := certificatesv1.NewNodeCertificateServiceClient(conn).IssueNodeCertificate(ctx,
		&certificatesv1.IssueNodeCertificateRequest{NodeName: node, CertificateRequest: csr})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	certFile, keyFile := filepath.Join(dir, "node-"+node+".crt"), filepath.Join(dir, "node-"+node+".key")
	if err := pki.WriteKeyPair(certFile, keyFile, resp.GetCertificate(), key); err != nil {
		return fmt.Errorf("certs join: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, pki.CAFile), resp.GetCaCertificate(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(s.deps.Stdout, "%s  system:node:%s (system:nodes)\n", certFile, node)
	return nil
}

// certsInit makes the CA and every component's certificate in dir.
func certsInit(dir string, o certsOptions, printf func(string, ...any)) error {
	if dir == "" {
		return fmt.Errorf("certs init: DIR must not be empty")
	}
	for _, n := range o.nodes {
		if n == "" || strings.ContainsAny(n, "/\\ ") {
			return fmt.Errorf("certs init: --node %q: not a node name", n)
		}
	}
	ca, err := pki.EnsureCA(dir)
	if err != nil {
		return fmt.Errorf("certs init: CA in %s: %w", dir, err)
	}
	local := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil {
		local = append(local, h)
	}
	certs := []pki.Certificate{
		{Name: "apiserver", CommonName: "bosun-apiserver", Hosts: append(append([]string(nil), local...), o.hosts...)},
		// The apiserver's identity towards node-agents (--node-agent-cert-file),
		// the one caller their API accepts by default (--api-callers).
		{Name: "apiserver-node-agent-client", CommonName: "bosun-apiserver", Client: true},
	}
	for _, u := range serviceUsers {
		certs = append(certs, pki.Certificate{Name: u, CommonName: u, Client: true, Hosts: local})
	}
	for _, n := range o.nodes {
		// A node-agent serves under its node's name: callers dial its
		// address and verify the name of the Node they mean.
		certs = append(certs, pki.Certificate{Name: "node-" + n, CommonName: pki.NodeUserPrefix + n, Organizations: []string{pki.NodesGroup}, Client: true, Hosts: []string{n}})
	}
	certs = append(certs, pki.Certificate{Name: "admin", CommonName: "admin", Organizations: []string{"system:masters"}, Client: true})
	for _, c := range certs {
		out, err := pki.Issue(dir, c)
		if err != nil {
			return fmt.Errorf("certs init: %s: %w", c.Name, err)
		}
		who := c.CommonName
		if len(c.Organizations) > 0 {
			who += " (" + strings.Join(c.Organizations, ",") + ")"
		}
		printf("%-32s %s\n", filepath.Base(out.CertFile), who)
	}
	conf, err := yaml.Marshal(ConfigFile{Server: o.server, CA: "ca.crt", Cert: "admin.crt", Key: "admin.key"})
	if err != nil {
		return err
	}
	confPath := filepath.Join(dir, "admin.conf")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		return fmt.Errorf("certs init: %w", err)
	}
	printf("%-32s bosun config for admin (BOSUN_CONFIG=%s)\n", "admin.conf", confPath)
	printf("CA: %s\n", ca)
	return nil
}
