// Package authn says who sent a request to the apiserver. A request may
// present a client certificate, verified against the cluster CA bundle (the
// certificate's CommonName is the user, its Organizations the groups), or a bearer token listed in a token file that the apiserver
// re-reads when it changes, so that deleting a line revokes the token. The
// REST gateway authenticates a request itself and forwards the identity to
// the gRPC API with a per-process secret (Forwarded).
//
// Authenticators return ok=false when a request carries no credentials of
// their kind, and an error when it carries credentials that are wrong.
package authn

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"bosun.dev/pkg/pki"
)

// Well-known users and groups.
const (
	// GroupAuthenticated is added to every authenticated user.
	GroupAuthenticated = "system:authenticated"
	// GroupMasters holds superusers: every request is authorized.
	GroupMasters = "system:masters"
	// GroupNodes holds node-agents, which the node authorizer confines to
	// their own node.
	GroupNodes = pki.NodesGroup
	// NodeUserPrefix starts a node-agent's user name: system:node:<node name>.
	NodeUserPrefix = pki.NodeUserPrefix
)

// ErrNoCredentials is returned by Union when a request carries no credentials.
var ErrNoCredentials = errors.New("no credentials: present a client certificate signed by the cluster CA or a bearer token")

// User is an authenticated identity.
type User struct {
	Name   string
	Groups []string
}

// InGroup reports whether u is a member of group.
func (u User) InGroup(group string) bool { return slices.Contains(u.Groups, group) }

// NodeName returns the node a node-agent user acts for: <name> for the user
// system:node:<name> in the group system:nodes; "" for everyone else.
func (u User) NodeName() string {
	if !u.InGroup(GroupNodes) || !strings.HasPrefix(u.Name, NodeUserPrefix) {
		return ""
	}
	return strings.TrimPrefix(u.Name, NodeUserPrefix)
}

// Credentials are what a request presents.
type Credentials struct {
	// Certificates is the client's certificate chain, leaf first, as sent
	// in the TLS handshake (not yet verified); empty without one.
	Certificates []*x509.Certificate
	// Token is the bearer token, without the "Bearer " prefix.
	Token string
	// GatewaySecret, ForwardedUser and ForwardedGroups carry the identity
	// the REST gateway established; they count only with the gateway's
	// secret.
	GatewaySecret   string
	ForwardedUser   string
	ForwardedGroups []string
}

// Authenticator identifies the user behind credentials.
type Authenticator interface {
	// Authenticate returns the user and true; false when the credentials hold
	// nothing for this authenticator; an error when they are invalid.
	Authenticate(c Credentials) (User, bool, error)
}

// Union tries each authenticator in order: the first that recognises the
// credentials decides. With none it returns ErrNoCredentials.
type Union []Authenticator

// Authenticate implements Authenticator; it adds GroupAuthenticated.
func (u Union) Authenticate(c Credentials) (User, bool, error) {
	var firstErr error
	for _, a := range u {
		user, ok, err := a.Authenticate(c)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if ok {
			if !user.InGroup(GroupAuthenticated) {
				user.Groups = append(slices.Clone(user.Groups), GroupAuthenticated)
			}
			return user, true, nil
		}
	}
	if firstErr != nil {
		return User{}, false, firstErr
	}
	return User{}, false, ErrNoCredentials
}

// Certificates authenticates client certificates signed by a CA of Roots:
// CommonName is the user name, Organizations are the groups. Roots is called
// on every request, so a rotated CA bundle takes effect at once.
type Certificates struct {
	Roots func() *x509.CertPool
	// Now is the time certificates must be valid at; time.Now when nil.
	Now func() time.Time
}

// Authenticate implements Authenticator.
func (a Certificates) Authenticate(c Credentials) (User, bool, error) {
	if len(c.Certificates) == 0 {
		return User{}, false, nil
	}
	leaf := c.Certificates[0]
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	if err := pki.VerifyClient(c.Certificates, a.Roots(), now()); err != nil {
		return User{}, false, err
	}
	if leaf.Subject.CommonName == "" {
		return User{}, false, fmt.Errorf("client certificate (serial %s) has no CommonName to name its user", leaf.SerialNumber)
	}
	return User{Name: leaf.Subject.CommonName, Groups: slices.Clone(leaf.Subject.Organization)}, true, nil
}

// Forwarded trusts the identity the REST gateway forwards, when the request
// carries the gateway's secret as its token.
type Forwarded struct {
	// Secret is the gateway's per-process token.
	Secret string
}

// Authenticate implements Authenticator.
func (f Forwarded) Authenticate(c Credentials) (User, bool, error) {
	if c.GatewaySecret == "" {
		return User{}, false, nil
	}
	if f.Secret == "" || subtle.ConstantTimeCompare([]byte(c.GatewaySecret), []byte(f.Secret)) != 1 {
		return User{}, false, errors.New("forwarded identity with a wrong gateway secret")
	}
	if c.ForwardedUser == "" {
		return User{}, false, ErrNoCredentials
	}
	return User{Name: c.ForwardedUser, Groups: slices.Clone(c.ForwardedGroups)}, true, nil
}

type userKey struct{}

// WithUser returns ctx carrying u.
func WithUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the user ctx carries.
func UserFrom(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userKey{}).(User)
	return u, ok
}
