package bootstrap

import (
	"context"
	"crypto/x509"
	"math/rand/v2"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"
)

// The share of a certificate's lifetime after which it is renewed is drawn
// from [RenewFractionMin, RenewFractionMax) for every certificate, so that
// nodes that joined together do not all renew at once.
const (
	RenewFractionMin = 0.7
	RenewFractionMax = 0.8
)

// maxWait bounds one sleep of the Rotator: it looks at its files again at
// least this often (a suspended machine, files replaced by hand).
const maxWait = time.Hour

// RenewAt returns when a certificate written at written is renewed: once
// fraction of its lifetime has passed. The lifetime starts at NotBefore, or
// at written when that is later (the apiserver back-dates NotBefore by an
// hour against clock skew, which is no part of the time the certificate
// was held), and ends at NotAfter.
func RenewAt(cert *x509.Certificate, written time.Time, fraction float64) time.Time {
	start := cert.NotBefore
	if written.After(start) && written.Before(cert.NotAfter) {
		start = written
	}
	return start.Add(time.Duration(float64(cert.NotAfter.Sub(start)) * fraction))
}

// Rotator renews the node's certificate, authenticated by the current one,
// before it expires and replaces the files. A certificate that is gone or
// expired meanwhile is requested again with the bootstrap token, if there
// is one.
type Rotator struct {
	cfg Config
	// OnRotate, when set, is called with each new certificate once its files
	// are in place.
	OnRotate func(*x509.Certificate)
	// Fraction, when set, replaces the random share of the lifetime after
	// which a certificate is renewed.
	Fraction float64
}

// NewRotator returns a Rotator of cfg's files.
func NewRotator(cfg Config) (*Rotator, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return &Rotator{cfg: cfg}, nil
}

// Run renews the certificate whenever it is due until ctx ends, retrying
// failed renewals with back-off (1 s growing to 5 min). It returns ctx's
// error.
func (r *Rotator) Run(ctx context.Context) error {
	cfg, clk := r.cfg, r.cfg.Clock
	backoff := r.backoff()
	fraction := r.fraction()
	for {
		var err error
		cred := credCertificate
		cur, written, loadErr := r.current()
		if loadErr == nil {
			at := RenewAt(cur, written, fraction)
			if d := at.Sub(clk.Now()); d > 0 {
				cfg.Log.DebugContext(ctx, "node certificate renewal scheduled", "at", at, "notAfter", cur.NotAfter)
				if !sleep(ctx, clk, min(d, maxWait)) {
					return ctx.Err()
				}
				continue // look at the files again: they may have changed
			}
			cfg.Log.InfoContext(ctx, "renewing the node certificate", "notAfter", cur.NotAfter, "subject", cur.Subject.CommonName)
		} else if cfg.Token != "" {
			cred = credToken
			cfg.Log.WarnContext(ctx, "the node certificate is not usable: requesting one with the bootstrap token", "err", loadErr)
		} else {
			err = loadErr
		}
		if err == nil {
			var leaf *x509.Certificate
			if leaf, err = requestAndWrite(ctx, cfg, cred, false); err == nil {
				backoff = r.backoff()
				fraction = r.fraction()
				if r.OnRotate != nil {
					r.OnRotate(leaf)
				}
				continue
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := backoff.Step()
		cfg.Log.ErrorContext(ctx, "renewing the node certificate failed", "err", err, "retry_in", d)
		if !sleep(ctx, clk, d) {
			return ctx.Err()
		}
	}
}

// current returns the usable certificate in the files and when it was
// written.
func (r *Rotator) current() (*x509.Certificate, time.Time, error) {
	finishInterruptedWrite(r.cfg.CertFile, r.cfg.KeyFile)
	cur, err := loadCurrent(r.cfg)
	if err != nil {
		return nil, time.Time{}, err
	}
	var written time.Time
	if fi, err := os.Stat(r.cfg.CertFile); err == nil {
		written = fi.ModTime()
	}
	return cur, written, nil
}

func (r *Rotator) fraction() float64 {
	if r.Fraction > 0 {
		return r.Fraction
	}
	return RenewFractionMin + rand.Float64()*(RenewFractionMax-RenewFractionMin)
}

func (r *Rotator) backoff() *wait.Backoff {
	return &wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.2, Steps: 1 << 30, Cap: 5 * time.Minute}
}

// sleep waits d on clk; false when ctx ended first.
func sleep(ctx context.Context, clk clock.Clock, d time.Duration) bool {
	t := clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}
