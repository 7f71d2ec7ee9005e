package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"bosun.dev/pkg/client"
)

// Conn is a connection to the apiserver.
type Conn interface {
	grpc.ClientConnInterface
	Close() error
}

// Deps are everything a command touches outside the process.
type Deps struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Dial connects to the apiserver.
	Dial func(client.Config) (Conn, error)
	// Getenv reads an environment variable.
	Getenv func(string) string
	// HomeDir returns the user's home directory, for ~/.bosun/config.
	HomeDir func() (string, error)
	// Now is the clock ages are measured against.
	Now func() time.Time
}

// DefaultDeps are the real process's streams, environment and network.
func DefaultDeps() Deps {
	return Deps{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Dial: func(cfg client.Config) (Conn, error) {
			return client.Dial(cfg)
		},
		Getenv:  os.Getenv,
		HomeDir: os.UserHomeDir,
		Now:     time.Now,
	}
}

// globalFlags are the flags every command shares.
type globalFlags struct {
	server     string
	insecure   bool
	configPath string
	namespace  string
}

// session is the state of one invocation: its dependencies, the global flags
// and, once needed, the config file and the connection.
type session struct {
	deps  Deps
	flags globalFlags

	settings *Settings
	conn     Conn
}

// Run executes the bosun command line with args (without the program name)
// and returns the process exit code.
func Run(ctx context.Context, args []string, deps Deps) int {
	s := &session{deps: deps}
	root := s.newRootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if s.conn != nil {
		s.conn.Close()
	}
	if err != nil {
		if !errors.Is(err, errReported) {
			fmt.Fprintln(deps.Stderr, formatError(err))
		}
		return 1
	}
	return 0
}

func (s *session) newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "bosun",
		Short: "bosun controls a Bosun cluster",
		Long: "bosun controls a Bosun cluster: it applies Kubernetes-shaped manifests and\n" +
			"gets, describes and deletes the objects the apiserver stores.",
		SilenceErrors: true,
		SilenceUsage:  true,
		CompletionOptions: cobra.CompletionOptions{
			DisableDefaultCmd: true,
		},
	}
	root.SetIn(s.deps.Stdin)
	root.SetOut(s.deps.Stdout)
	root.SetErr(s.deps.Stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&s.flags.server, "server", "", "apiserver address host:port (default $BOSUN_SERVER, else the config file's server)")
	pf.BoolVar(&s.flags.insecure, "insecure", false, "connect without TLS")
	pf.StringVar(&s.flags.configPath, "config", "", "config file (default $BOSUN_CONFIG, else ~/.bosun/config)")
	pf.StringVarP(&s.flags.namespace, "namespace", "n", "", "namespace (default the config file's namespace, else \"default\")")

	root.AddCommand(
		s.newApplyCommand(),
		s.newGetCommand(),
		s.newDescribeCommand(),
		s.newDeleteCommand(),
		s.newCreateCommand(),
		s.newVersionCommand(),
		s.newCompletionCommand(),
	)
	root.AddCommand(s.nodeCommands()...)
	root.AddCommand(s.newScaleCommand(), s.newRolloutCommand(), s.newRunCommand(), s.newExposeCommand())
	root.AddCommand(s.newLogsCommand(), s.newImageCommand())
	root.AddCommand(s.newCertsCommand(), s.newAuthCommand())
	return root
}

// config returns the settings from flags, environment and config file,
// reading the file on first use.
func (s *session) config() (*Settings, error) {
	if s.settings != nil {
		return s.settings, nil
	}
	st, err := resolveSettings(s.flags, s.deps.Getenv, s.deps.HomeDir)
	if err != nil {
		return nil, err
	}
	s.settings = st
	return st, nil
}

// namespace is the namespace commands work in: -n, else the config file's,
// else "default".
func (s *session) namespace() (string, error) {
	st, err := s.config()
	if err != nil {
		return "", err
	}
	return st.Namespace, nil
}

// connect dials the apiserver on first use.
func (s *session) connect() (Conn, error) {
	if s.conn != nil {
		return s.conn, nil
	}
	st, err := s.config()
	if err != nil {
		return nil, err
	}
	if st.Server == "" {
		return nil, fmt.Errorf("no server to talk to: set --server, $BOSUN_SERVER or server in %s", st.ConfigPath)
	}
	conn, err := s.deps.Dial(st.clientConfig())
	if err != nil {
		return nil, err
	}
	s.conn = conn
	return conn, nil
}

func (s *session) now() time.Time {
	if s.deps.Now != nil {
		return s.deps.Now()
	}
	return time.Now()
}
