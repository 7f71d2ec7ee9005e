package manager

import (
	"bosun.dev/services/controller/internal/controller"
	"bosun.dev/services/controller/internal/daemonset"
	"bosun.dev/services/controller/internal/deployment"
	"bosun.dev/services/controller/internal/endpoints"
	"bosun.dev/services/controller/internal/garbagecollector"
	"bosun.dev/services/controller/internal/job"
	"bosun.dev/services/controller/internal/namespace"
	"bosun.dev/services/controller/internal/nodeipam"
	"bosun.dev/services/controller/internal/replicaset"
	"bosun.dev/services/controller/internal/statefulset"
)

// Registry returns every controller Bosun has, by name.
func Registry() map[string]Factory {
	return map[string]Factory{
		replicaset.Name:       func(c *controller.Context, _ *Config) (Runner, error) { return replicaset.New(c), nil },
		deployment.Name:       func(c *controller.Context, _ *Config) (Runner, error) { return deployment.New(c), nil },
		endpoints.Name:        func(c *controller.Context, _ *Config) (Runner, error) { return endpoints.New(c), nil },
		garbagecollector.Name: func(c *controller.Context, _ *Config) (Runner, error) { return garbagecollector.New(c), nil },
		namespace.Name:        func(c *controller.Context, _ *Config) (Runner, error) { return namespace.New(c), nil },
		daemonset.Name:        func(c *controller.Context, _ *Config) (Runner, error) { return daemonset.New(c), nil },
		statefulset.Name:      func(c *controller.Context, _ *Config) (Runner, error) { return statefulset.New(c), nil },
		job.Name:              func(c *controller.Context, _ *Config) (Runner, error) { return job.New(c), nil },
		nodeipam.Name: func(c *controller.Context, cfg *Config) (Runner, error) {
			if cfg.ClusterCIDR == "" {
				return idle{}, nil
			}
			return nodeipam.New(c, cfg.ClusterCIDR, cfg.NodeCIDRMaskSize)
		},
	}
}
