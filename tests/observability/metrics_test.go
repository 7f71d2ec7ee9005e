package observability

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parseMetrics parses a /metrics body with the Prometheus text parser.
func parseMetrics(body []byte) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(bytes.NewReader(body))
}

// docMetrics are the metrics docs/observability.md lists, by the service
// section ("## apiserver", ...) they appear in; "## Every service" lists
// the ones all services serve. Only rows whose "When" column is one of
// requiredWhen are required: the others appear after events the test does
// not cause (a NACK, an eviction, a container runtime).
type docMetrics struct {
	always   map[string][]string // service or "*" -> names
	sections map[string]bool
}

// requiredWhen are the "When" values of the metrics the test requires:
// it makes a gRPC call to every service and has pods scheduled.
var requiredWhen = map[string]bool{"always": true, "after a call": true, "after a scheduled pod": true}

var (
	sectionRE = regexp.MustCompile("^## (.+)$")
	rowRE     = regexp.MustCompile("^\\| `([a-z_:][a-z0-9_:]*)` \\|")
)

// documentedMetrics reads the metric tables of the document at path: rows
// "| `name` | type | labels | when | meaning |" under a "## service"
// heading.
func documentedMetrics(path string) (*docMetrics, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d := &docMetrics{always: map[string][]string{}, sections: map[string]bool{}}
	section := ""
	sc := bufio.NewScanner(f)
	rows := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := sectionRE.FindStringSubmatch(line); m != nil {
			section = strings.ToLower(strings.TrimSpace(m[1]))
			if section == "every service" {
				section = "*"
			}
			continue
		}
		m := rowRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 5 {
			return nil, fmt.Errorf("%s: metric row %q has %d columns, want 5", path, line, len(cells))
		}
		rows++
		d.sections[section] = true
		if requiredWhen[strings.TrimSpace(cells[3])] {
			d.always[section] = append(d.always[section], m[1])
		}
	}
	if rows == 0 {
		return nil, fmt.Errorf("%s lists no metrics", path)
	}
	return d, sc.Err()
}

// required are the metrics the service must serve from its start; nil
// when the document has no table for the service.
func (d *docMetrics) required(service string) []string {
	if !d.sections[service] {
		return nil
	}
	return append(append([]string(nil), d.always["*"]...), d.always[service]...)
}
