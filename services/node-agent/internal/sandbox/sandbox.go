// Package sandbox keeps a record of each pod's sandbox on the node's disk:
// the pod it belongs to and its network attachment. The record is written
// once the network is set up and removed after teardown, so that a
// restarted node-agent can adopt the sandboxes of its pods and tear down
// those of pods that are gone.
package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"bosun.dev/services/node-agent/internal/network"
)

// Record describes one pod's sandbox.
type Record struct {
	UID       string             `json:"uid"`
	Namespace string             `json:"namespace"`
	Name      string             `json:"name"`
	Hostname  string             `json:"hostname"`
	Network   network.Attachment `json:"network"`
	// HostNetwork pods have no namespace of their own.
	HostNetwork bool `json:"hostNetwork,omitempty"`
	// Released: the pod finished and its network was torn down; Network.IP
	// is kept for the pod's status.
	Released bool `json:"released,omitempty"`
}

// Store keeps records under Dir/<uid>/sandbox.json; Dir/<uid> is the pod's
// directory, which also holds its volumes and generated files.
type Store struct {
	Dir string
}

// PodDir is the directory of a pod on the node.
func (s Store) PodDir(uid string) string { return filepath.Join(s.Dir, uid) }

func (s Store) path(uid string) string { return filepath.Join(s.PodDir(uid), "sandbox.json") }

// Save writes a record atomically.
func (s Store) Save(r Record) error {
	if err := os.MkdirAll(s.PodDir(r.UID), 0o750); err != nil {
		return fmt.Errorf("pod directory: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.path(r.UID) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing sandbox record: %w", err)
	}
	if err := os.Rename(tmp, s.path(r.UID)); err != nil {
		return fmt.Errorf("writing sandbox record: %w", err)
	}
	return nil
}

// Load reads a pod's record; ok is false when there is none.
func (s Store) Load(uid string) (Record, bool, error) {
	b, err := os.ReadFile(s.path(uid))
	if errors.Is(err, os.ErrNotExist) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("reading sandbox record: %w", err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, false, fmt.Errorf("sandbox record %s: %w", s.path(uid), err)
	}
	return r, true, nil
}

// List returns the uids of every pod directory.
func (s Store) List() ([]string, error) {
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Remove deletes a pod's directory with everything in it.
func (s Store) Remove(uid string) error {
	if err := os.RemoveAll(s.PodDir(uid)); err != nil {
		return fmt.Errorf("removing pod directory: %w", err)
	}
	return nil
}

// Records is where sandbox records are kept: Store on disk for real
// nodes, Memory for simulated ones.
type Records interface {
	Save(r Record) error
	Load(uid string) (Record, bool, error)
	List() ([]string, error)
	Remove(uid string) error
	// PodDir is the pod's directory on disk; "" when records live in
	// memory and pods have no files.
	PodDir(uid string) string
}

var (
	_ Records = Store{}
	_ Records = (*Memory)(nil)
)

// Memory keeps records in memory, for simulated nodes whose pods have no
// files.
type Memory struct {
	mu   sync.Mutex
	recs map[string]Record
}

// NewMemory returns an empty Memory.
func NewMemory() *Memory { return &Memory{recs: map[string]Record{}} }

// Save stores r.
func (m *Memory) Save(r Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs[r.UID] = r
	return nil
}

// Load returns a record.
func (m *Memory) Load(uid string) (Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[uid]
	return r, ok, nil
}

// List returns the uids with records.
func (m *Memory) List() ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.recs))
	for uid := range m.recs {
		out = append(out, uid)
	}
	return out, nil
}

// Remove forgets a record.
func (m *Memory) Remove(uid string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.recs, uid)
	return nil
}

// PodDir is "": simulated pods have no directory.
func (m *Memory) PodDir(string) string { return "" }
