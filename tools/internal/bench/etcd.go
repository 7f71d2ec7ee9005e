package bench

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Etcd is a single-member etcd running in this process, with its data in a
// temporary directory.
type Etcd struct {
	// Endpoint is the bound client URL, e.g. http://127.0.0.1:40123.
	Endpoint string
	// Client is connected to Endpoint.
	Client *clientv3.Client
	server *embed.Etcd
	dir    string
}

// StartEtcd starts an etcd member on 127.0.0.1 with free ports and waits
// until it serves. Close releases it.
func StartEtcd(ctx context.Context) (*Etcd, error) {
	dir, err := os.MkdirTemp("", "bosun-bench-etcd-")
	if err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = "bench"
	cfg.Dir = dir
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.LogLevel = "error"
	local := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{local}, []url.URL{local}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{local}, []url.URL{local}
	cfg.InitialCluster = cfg.Name + "=" + local.String()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting etcd: %w", err)
	}
	et := &Etcd{server: e, dir: dir}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		et.Close()
		return nil, fmt.Errorf("etcd: %w", err)
	case <-ctx.Done():
		et.Close()
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		et.Close()
		return nil, fmt.Errorf("etcd was not ready within 30s")
	}
	et.Endpoint = "http://" + e.Clients[0].Addr().String()
	et.Client, err = clientv3.New(clientv3.Config{
		Endpoints: []string{et.Endpoint}, Logger: zap.NewNop(), DialTimeout: 5 * time.Second,
	})
	if err != nil {
		et.Close()
		return nil, err
	}
	return et, nil
}

// Close stops the member and removes its data.
func (e *Etcd) Close() {
	if e.Client != nil {
		e.Client.Close()
	}
	e.server.Close()
	os.RemoveAll(e.dir)
}

// DeletePrefix removes every key under prefix and returns the revision of
// the deletion.
func (e *Etcd) DeletePrefix(ctx context.Context, prefix string) (int64, error) {
	resp, err := e.Client.Delete(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("deleting %s: %w", prefix, err)
	}
	return resp.Header.Revision, nil
}

// CountPrefix returns the number of keys under prefix.
func (e *Etcd) CountPrefix(ctx context.Context, prefix string) (int64, error) {
	resp, err := e.Client.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("counting %s: %w", prefix, err)
	}
	return resp.Count, nil
}
