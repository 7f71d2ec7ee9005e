package bootstrap

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"slices"
)

// pendingSuffix names the finished new files before they are renamed into
// place.
const pendingSuffix = ".new"

// writePair replaces certFile and keyFile with certPEM and keyPEM. Each new
// file is written and synced in full under a temporary name first, then
// renamed into place, key first: a reader sees each file whole, old or new.
// Between the two renames the new key sits beside the old certificate, a
// pair no TLS loader accepts, so reloaders keep the pair they had (and
// finishInterruptedWrite completes the pair after a crash there). When
// certFile and keyFile are the same file it holds the certificate and the
// key and is replaced in one rename. Key files are 0600.
func writePair(certFile, keyFile string, certPEM, keyPEM []byte) error {
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return err
	}
	if certFile == keyFile {
		combined := slices.Concat(certPEM, keyPEM)
		if err := writeSynced(certFile+pendingSuffix, combined, 0o600); err != nil {
			return err
		}
		return renameSynced(certFile+pendingSuffix, certFile)
	}
	if err := writeSynced(keyFile+pendingSuffix, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeSynced(certFile+pendingSuffix, certPEM, 0o644); err != nil {
		_ = os.Remove(keyFile + pendingSuffix)
		return err
	}
	if err := renameSynced(keyFile+pendingSuffix, keyFile); err != nil {
		_ = os.Remove(keyFile + pendingSuffix)
		_ = os.Remove(certFile + pendingSuffix)
		return err
	}
	return renameSynced(certFile+pendingSuffix, certFile)
}

// finishInterruptedWrite completes a writePair that stopped between its two
// renames: the new key is in place and the new certificate still pending.
// Leftover pending files that complete nothing are removed.
func finishInterruptedWrite(certFile, keyFile string) {
	pendingCert, pendingKey := certFile+pendingSuffix, keyFile+pendingSuffix
	if certFile != keyFile {
		if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			if _, err := tls.LoadX509KeyPair(pendingCert, keyFile); err == nil {
				_ = renameSynced(pendingCert, certFile)
			}
		}
		_ = os.Remove(pendingKey)
	}
	_ = os.Remove(pendingCert)
}

// writeSynced writes data to a new file at path with mode, synced to disk.
func writeSynced(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode) // whatever the umask
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
	}
	return err
}

// renameSynced renames from to to and syncs the directory, so the rename
// survives a crash.
func renameSynced(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(to))
	if err != nil {
		return nil // the rename is done; only its durability is unknown
	}
	_ = d.Sync()
	return d.Close()
}
