package framework

import (
	"encoding/json"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// DefaultSchedulerName is the scheduler name pods get when they name none.
const DefaultSchedulerName = "default-scheduler"

// Configuration is the scheduler's configuration file:
//
//	percentageOfNodesToScore: 0      # 0: adaptive, as kube-scheduler
//	profiles:
//	- schedulerName: default-scheduler
//	  plugins:
//	    enabled:                      # added to the defaults, or re-weighted
//	    - {name: MostAllocated, weight: 1}
//	    disabled:                     # removed from the defaults; "*" removes all
//	    - {name: LeastAllocated}
//	  pluginConfig:
//	  - name: NodeResourcesFit
//	    args: {...}
type Configuration struct {
	// PercentageOfNodesToScore bounds the share of nodes searched for
	// feasible ones once enough are found: 0 adapts it to the cluster size
	// (50% at 100 nodes down to 5% at 5,625 or more), 100 searches all.
	PercentageOfNodesToScore int32 `json:"percentageOfNodesToScore,omitempty"`
	// Profiles are the schedulers this process runs, one per scheduler name.
	Profiles []Profile `json:"profiles,omitempty"`
}

// Profile is one scheduler name's plugin set.
type Profile struct {
	SchedulerName string         `json:"schedulerName,omitempty"`
	Plugins       PluginSet      `json:"plugins,omitempty"`
	PluginConfig  []PluginConfig `json:"pluginConfig,omitempty"`
}

// PluginSet changes the default plugins.
type PluginSet struct {
	Enabled  []PluginRef `json:"enabled,omitempty"`
	Disabled []PluginRef `json:"disabled,omitempty"`
}

// PluginRef names a plugin and, for Score plugins, its weight.
type PluginRef struct {
	Name   string `json:"name"`
	Weight int32  `json:"weight,omitempty"`
}

// PluginConfig holds one plugin's arguments.
type PluginConfig struct {
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

// DefaultConfiguration is the configuration without a file: one profile,
// default-scheduler, with the default plugins.
func DefaultConfiguration() *Configuration {
	return &Configuration{Profiles: []Profile{{SchedulerName: DefaultSchedulerName}}}
}

// LoadConfiguration reads and checks a configuration file. Unknown fields
// are errors that name them.
func LoadConfiguration(path string, registry Registry, defaults []PluginRef) (*Configuration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading scheduler configuration: %w", err)
	}
	return ParseConfiguration(b, registry, defaults)
}

// ParseConfiguration decodes (strictly) and validates a configuration.
func ParseConfiguration(b []byte, registry Registry, defaults []PluginRef) (*Configuration, error) {
	var cfg Configuration
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		return nil, fmt.Errorf("scheduler configuration: %w", err)
	}
	if len(cfg.Profiles) == 0 {
		cfg.Profiles = DefaultConfiguration().Profiles
	}
	if err := cfg.Validate(registry, defaults); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Validate checks the configuration against the plugins in registry and
// returns the first problem, naming its field.
func (c *Configuration) Validate(registry Registry, defaults []PluginRef) error {
	if c.PercentageOfNodesToScore < 0 || c.PercentageOfNodesToScore > 100 {
		return fmt.Errorf("scheduler configuration: percentageOfNodesToScore: %d is not between 0 and 100", c.PercentageOfNodesToScore)
	}
	names := map[string]int{}
	for i := range c.Profiles {
		p := &c.Profiles[i]
		path := fmt.Sprintf("profiles[%d]", i)
		if p.SchedulerName == "" {
			p.SchedulerName = DefaultSchedulerName
		}
		if j, dup := names[p.SchedulerName]; dup {
			return fmt.Errorf("scheduler configuration: %s.schedulerName: %q is also the name of profiles[%d]", path, p.SchedulerName, j)
		}
		names[p.SchedulerName] = i
		check := func(kind string, refs []PluginRef, allowStar bool) error {
			for j, r := range refs {
				if r.Name == "*" && allowStar {
					continue
				}
				if _, ok := registry[r.Name]; !ok {
					return fmt.Errorf("scheduler configuration: %s.plugins.%s[%d].name: unknown plugin %q", path, kind, j, r.Name)
				}
				if r.Weight < 0 {
					return fmt.Errorf("scheduler configuration: %s.plugins.%s[%d].weight: %d is negative", path, kind, j, r.Weight)
				}
			}
			return nil
		}
		if err := check("enabled", p.Plugins.Enabled, false); err != nil {
			return err
		}
		if err := check("disabled", p.Plugins.Disabled, true); err != nil {
			return err
		}
		seen := map[string]bool{}
		for j, pc := range p.PluginConfig {
			if _, ok := registry[pc.Name]; !ok {
				return fmt.Errorf("scheduler configuration: %s.pluginConfig[%d].name: unknown plugin %q", path, j, pc.Name)
			}
			if seen[pc.Name] {
				return fmt.Errorf("scheduler configuration: %s.pluginConfig[%d].name: %q is configured twice", path, j, pc.Name)
			}
			seen[pc.Name] = true
		}
		if len(p.EffectivePlugins(defaults)) == 0 {
			return fmt.Errorf("scheduler configuration: %s.plugins: every plugin is disabled", path)
		}
	}
	return nil
}

// EffectivePlugins applies the profile's changes to the default plugin set,
// in order: the defaults that are not disabled (with weights from Enabled
// when given there), then the enabled plugins that are not defaults.
func (p *Profile) EffectivePlugins(defaults []PluginRef) []PluginRef {
	disabled := map[string]bool{}
	for _, r := range p.Plugins.Disabled {
		disabled[r.Name] = true
	}
	enabled := map[string]PluginRef{}
	for _, r := range p.Plugins.Enabled {
		enabled[r.Name] = r
	}
	var out []PluginRef
	inDefaults := map[string]bool{}
	for _, d := range defaults {
		inDefaults[d.Name] = true
		if e, ok := enabled[d.Name]; ok {
			if e.Weight != 0 {
				d.Weight = e.Weight
			}
			out = append(out, d)
			continue
		}
		if disabled["*"] || disabled[d.Name] {
			continue
		}
		out = append(out, d)
	}
	for _, r := range p.Plugins.Enabled {
		if !inDefaults[r.Name] {
			out = append(out, r)
		}
	}
	return out
}

// Args returns the profile's arguments for the named plugin, nil if none.
func (p *Profile) Args(name string) json.RawMessage {
	for _, pc := range p.PluginConfig {
		if pc.Name == name {
			return pc.Args
		}
	}
	return nil
}

// DecodeArgs decodes a plugin's arguments strictly into out; nil args leave
// out as it is. A plugin without arguments passes a nil out, and then any
// argument is an error.
func DecodeArgs(plugin string, args json.RawMessage, out any) error {
	if len(args) == 0 || string(args) == "null" {
		return nil
	}
	if out == nil {
		return fmt.Errorf("pluginConfig %s: the plugin takes no args", plugin)
	}
	if err := yaml.UnmarshalStrict(args, out); err != nil {
		return fmt.Errorf("pluginConfig %s: args: %w", plugin, err)
	}
	return nil
}
