package authn

import (
	"crypto/sha256"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// TokenFile authenticates bearer tokens listed in a CSV file, one per line:
//
//	token,user,uid[,"group1,group2"]
//
// as Kubernetes' --token-auth-file. Blank lines and lines starting with # are
// skipped. The file is checked for changes (modification time, size, inode)
// on every request and re-read when it changed, so editing it adds and
// revokes tokens without a restart. A file that fails to parse leaves the
// previous tokens in force and the error is reported by Err.
type TokenFile struct {
	path string

	mu      sync.Mutex
	stamp   fileStamp
	tokens  map[[sha256.Size]byte]User
	loadErr error
}

type fileStamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

// NewTokenFile reads path; it fails when the file cannot be read or parsed.
func NewTokenFile(path string) (*TokenFile, error) {
	t := &TokenFile{path: path}
	if err := t.reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// Err returns the error of the last failed reload, nil after a good one.
func (t *TokenFile) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.loadErr
}

// Authenticate implements Authenticator.
func (t *TokenFile) Authenticate(c Credentials) (User, bool, error) {
	if c.Token == "" {
		return User{}, false, nil
	}
	t.mu.Lock()
	if st, err := stampOf(t.path); err != nil || st != t.stamp {
		_ = t.reloadLocked()
	}
	h := sha256.Sum256([]byte(c.Token))
	u, ok := t.tokens[h]
	t.mu.Unlock()
	if !ok {
		return User{}, false, errors.New("invalid bearer token")
	}
	return u, true, nil
}

func (t *TokenFile) reload() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reloadLocked()
}

func (t *TokenFile) reloadLocked() error {
	st, err := stampOf(t.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// A removed file revokes every token.
			t.tokens, t.stamp, t.loadErr = nil, fileStamp{}, fmt.Errorf("token file %s: %w", t.path, err)
			return t.loadErr
		}
		t.loadErr = fmt.Errorf("token file %s: %w", t.path, err)
		return t.loadErr
	}
	f, err := os.Open(t.path)
	if err != nil {
		t.loadErr = fmt.Errorf("token file %s: %w", t.path, err)
		return t.loadErr
	}
	defer f.Close()
	tokens, err := parseTokens(f)
	if err != nil {
		t.loadErr = fmt.Errorf("token file %s: %w", t.path, err)
		t.stamp = st // do not re-parse a bad file on every request
		return t.loadErr
	}
	t.tokens, t.stamp, t.loadErr = tokens, st, nil
	return nil
}

func parseTokens(r io.Reader) (map[[sha256.Size]byte]User, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	tokens := map[[sha256.Size]byte]User{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return tokens, nil
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		if len(rec) < 3 {
			return nil, fmt.Errorf("line %d: want token,user,uid[,\"groups\"], got %d fields", line, len(rec))
		}
		token, name := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		if token == "" {
			return nil, fmt.Errorf("line %d: empty token", line)
		}
		if name == "" {
			return nil, fmt.Errorf("line %d: empty user name", line)
		}
		u := User{Name: name}
		if len(rec) > 3 {
			for _, g := range strings.Split(rec[3], ",") {
				if g = strings.TrimSpace(g); g != "" {
					u.Groups = append(u.Groups, g)
				}
			}
		}
		h := sha256.Sum256([]byte(token))
		if _, dup := tokens[h]; dup {
			return nil, fmt.Errorf("line %d: token listed twice", line)
		}
		tokens[h] = u
	}
}
