package framework_test

import (
	"strings"
	"testing"

	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/plugins"
)

func TestParseConfiguration(t *testing.T) {
	reg, defaults := plugins.NewRegistry(), plugins.Defaults()
	cfg, err := framework.ParseConfiguration([]byte(`
percentageOfNodesToScore: 20
profiles:
- schedulerName: default-scheduler
- schedulerName: bin-packer
  plugins:
    enabled:
    - {name: MostAllocated, weight: 5}
    - {name: TaintToleration, weight: 7}
    disabled:
    - {name: LeastAllocated}
  pluginConfig:
  - name: InterPodAffinity
    args: {hardPodAffinityWeight: 3}
`), reg, defaults)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PercentageOfNodesToScore != 20 || len(cfg.Profiles) != 2 {
		t.Fatalf("parsed %+v", cfg)
	}
	eff := cfg.Profiles[1].EffectivePlugins(defaults)
	weights := map[string]int32{}
	for _, r := range eff {
		weights[r.Name] = r.Weight
	}
	if _, ok := weights["LeastAllocated"]; ok {
		t.Errorf("LeastAllocated still enabled: %v", eff)
	}
	if weights["MostAllocated"] != 5 || weights["TaintToleration"] != 7 || weights["NodeAffinity"] != 2 {
		t.Errorf("weights %v", weights)
	}
	if eff[len(eff)-1].Name != "MostAllocated" {
		t.Errorf("an added plugin comes after the defaults: %v", eff)
	}
	if _, err := framework.New(cfg.Profiles[1], reg, defaults, framework.Options{}); err != nil {
		t.Fatalf("building the profile: %v", err)
	}
}

func TestParseConfigurationRefusesBadInput(t *testing.T) {
	reg, defaults := plugins.NewRegistry(), plugins.Defaults()
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown field", "profiles:\n- schedulerName: a\n  plugin: {}\n", `unknown field "plugin"`},
		{"unknown plugin", "profiles:\n- plugins:\n    enabled: [{name: Magic}]\n", `profiles[0].plugins.enabled[0].name: unknown plugin "Magic"`},
		{"unknown disabled plugin", "profiles:\n- plugins:\n    disabled: [{name: Magic}]\n", `profiles[0].plugins.disabled[0].name: unknown plugin "Magic"`},
		{"negative weight", "profiles:\n- plugins:\n    enabled: [{name: LeastAllocated, weight: -1}]\n", "profiles[0].plugins.enabled[0].weight: -1 is negative"},
		{"duplicate scheduler name", "profiles:\n- schedulerName: a\n- schedulerName: a\n", `profiles[1].schedulerName: "a" is also the name of profiles[0]`},
		{"percentage out of range", "percentageOfNodesToScore: 101\n", "percentageOfNodesToScore: 101 is not between 0 and 100"},
		{"everything disabled", "profiles:\n- plugins:\n    disabled: [{name: '*'}]\n", "profiles[0].plugins: every plugin is disabled"},
		{"config for an unknown plugin", "profiles:\n- pluginConfig: [{name: Magic}]\n", `profiles[0].pluginConfig[0].name: unknown plugin "Magic"`},
		{"config twice", "profiles:\n- pluginConfig: [{name: InterPodAffinity}, {name: InterPodAffinity}]\n", `profiles[0].pluginConfig[1].name: "InterPodAffinity" is configured twice`},
		{"not YAML", "profiles: [", "scheduler configuration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := framework.ParseConfiguration([]byte(tc.yaml), reg, defaults)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestBadPluginArgsFailTheProfile(t *testing.T) {
	reg, defaults := plugins.NewRegistry(), plugins.Defaults()
	tests := []struct{ name, yaml, want string }{
		{"unknown arg", "profiles:\n- pluginConfig: [{name: InterPodAffinity, args: {weight: 3}}]\n", `unknown field "weight"`},
		{"args for a plugin without any", "profiles:\n- pluginConfig: [{name: NodeName, args: {x: 1}}]\n", "pluginConfig NodeName: the plugin takes no args"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := framework.ParseConfiguration([]byte(tc.yaml), reg, defaults)
			if err != nil {
				t.Fatal(err)
			}
			_, err = framework.New(cfg.Profiles[0], reg, defaults, framework.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestProfileWithoutBinderIsRefused(t *testing.T) {
	p := framework.Profile{SchedulerName: "x", Plugins: framework.PluginSet{Disabled: []framework.PluginRef{{Name: "DefaultBinder"}}}}
	_, err := framework.New(p, plugins.NewRegistry(), plugins.Defaults(), framework.Options{})
	if err == nil || !strings.Contains(err.Error(), "no Bind plugin") {
		t.Fatalf("got %v", err)
	}
}
