package translate

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

// Annotations a Service may carry to tune how it is load-balanced. Values
// that cannot be parsed are reported as Problems and the default is used.
const (
	// AnnotationLBPolicy picks the load-balancing policy: round-robin
	// (default), least-request, ring-hash or random. sessionAffinity:
	// ClientIP implies ring-hash.
	AnnotationLBPolicy = "service-proxy.bosun.dev/lb-policy"
	// AnnotationRetries is the number of retries (1-10) of a failed request;
	// unset or 0 means none.
	AnnotationRetries = "service-proxy.bosun.dev/retries"
	// AnnotationRetryOn lists the conditions that are retried, comma
	// separated, in Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on
	// vocabulary; default DefaultRetryOn.
	AnnotationRetryOn = "service-proxy.bosun.dev/retry-on"
	// AnnotationOutlierConsecutiveErrors turns on outlier detection: an
	// endpoint that fails this many requests in a row (1-1000) is ejected
	// for 30 s, then longer each time, at most half of the endpoints at once.
	AnnotationOutlierConsecutiveErrors = "service-proxy.bosun.dev/outlier-consecutive-errors"
	// AnnotationPreferLocal, "true", makes each proxy prefer endpoints on its
	// own node, then in its own zone, then the rest (Envoy priorities: a
	// tier takes over only when the one before it is unhealthy).
	AnnotationPreferLocal = "service-proxy.bosun.dev/prefer-local"
)

// DefaultRetryOn is what is retried when AnnotationRetries is set and
// AnnotationRetryOn is not.
const DefaultRetryOn = "connect-failure,refused-stream,unavailable,cancelled,resource-exhausted"

// Labels of a Node that place it in a locality.
const (
	LabelRegion = "topology.kubernetes.io/region"
	LabelZone   = "topology.kubernetes.io/zone"
)

// LBPolicy is a Service's load-balancing policy.
type LBPolicy string

// The load-balancing policies.
const (
	RoundRobin   LBPolicy = "round-robin"
	LeastRequest LBPolicy = "least-request"
	RingHash     LBPolicy = "ring-hash"
	Random       LBPolicy = "random"
)

// serviceOptions is what a Service's fields and annotations ask of its proxy.
type serviceOptions struct {
	lb                 LBPolicy
	clientIPAffinity   bool
	retries            uint32
	retryOn            string
	outlierErrors      uint32
	preferLocal        bool
	internalLocalOnly  bool
	publishNotReady    bool
	headless           bool
	clusterIP          string
	exposedOnNodePorts bool
	// externalLocalPolicy: ingress traffic goes only to the proxy's Node.
	externalLocalPolicy bool
}

var validRetryOn = map[string]bool{
	"5xx": true, "gateway-error": true, "reset": true, "connect-failure": true, "envoy-ratelimited": true,
	"retriable-4xx": true, "refused-stream": true, "retriable-status-codes": true, "retriable-headers": true,
	"cancelled": true, "deadline-exceeded": true, "internal": true, "resource-exhausted": true, "unavailable": true,
}

// parseServiceOptions reads svc's fields and annotations. Problems are
// reported through problem and the defaults used instead.
func parseServiceOptions(svc *corev1.Service, problem func(field, msg string)) serviceOptions {
	spec := svc.GetSpec()
	ann := svc.GetMetadata().GetAnnotations()
	o := serviceOptions{lb: RoundRobin, retryOn: DefaultRetryOn}
	switch v := LBPolicy(ann[AnnotationLBPolicy]); v {
	case "":
	case RoundRobin, LeastRequest, RingHash, Random:
		o.lb = v
	default:
		problem("metadata.annotations["+AnnotationLBPolicy+"]", fmt.Sprintf("unsupported value %q: want round-robin, least-request, ring-hash or random; using round-robin", v))
	}
	switch spec.GetSessionAffinity() {
	case "", "None":
	case "ClientIP":
		o.clientIPAffinity = true
		if o.lb != RoundRobin && o.lb != RingHash {
			problem("spec.sessionAffinity", fmt.Sprintf("ClientIP affinity needs ring-hash; ignoring lb-policy %q", o.lb))
		}
		o.lb = RingHash
	default:
		problem("spec.sessionAffinity", fmt.Sprintf("unsupported value %q: want None or ClientIP; using None", spec.GetSessionAffinity()))
	}
	if v, ok := ann[AnnotationRetries]; ok {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		if err != nil || n > 10 {
			problem("metadata.annotations["+AnnotationRetries+"]", fmt.Sprintf("invalid value %q: want a number from 0 to 10; not retrying", v))
		} else {
			o.retries = uint32(n)
		}
	}
	if v, ok := ann[AnnotationRetryOn]; ok {
		var kept []string
		for _, c := range strings.Split(v, ",") {
			c = strings.TrimSpace(c)
			if c == "" {
				continue
			}
			if validRetryOn[c] {
				kept = append(kept, c)
			} else {
				problem("metadata.annotations["+AnnotationRetryOn+"]", fmt.Sprintf("unknown retry condition %q ignored", c))
			}
		}
		if len(kept) > 0 {
			o.retryOn = strings.Join(kept, ",")
		}
	}
	if v, ok := ann[AnnotationOutlierConsecutiveErrors]; ok {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		if err != nil || n < 1 || n > 1000 {
			problem("metadata.annotations["+AnnotationOutlierConsecutiveErrors+"]", fmt.Sprintf("invalid value %q: want a number from 1 to 1000; outlier detection off", v))
		} else {
			o.outlierErrors = uint32(n)
		}
	}
	if v, ok := ann[AnnotationPreferLocal]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			problem("metadata.annotations["+AnnotationPreferLocal+"]", fmt.Sprintf("invalid value %q: want true or false", v))
		}
		o.preferLocal = b
	}
	o.internalLocalOnly = spec.GetInternalTrafficPolicy() == "Local"
	o.publishNotReady = spec.GetPublishNotReadyAddresses()
	o.clusterIP = spec.GetClusterIp()
	o.headless = o.clusterIP == "None"
	o.exposedOnNodePorts = spec.GetType() == "NodePort" || spec.GetType() == "LoadBalancer"
	o.externalLocalPolicy = o.exposedOnNodePorts && spec.GetExternalTrafficPolicy() == "Local"
	return o
}

// Protocol is how a port's traffic is proxied.
type Protocol int

// The protocols.
const (
	// TCP is proxied as a byte stream.
	TCP Protocol = iota
	// HTTP is HTTP/1.1 (or HTTP/2 when the client speaks it) to the upstream.
	HTTP
	// HTTP2 is HTTP/2 end to end: gRPC, h2c.
	HTTP2
)

// PortProtocol returns how port p is proxied: from appProtocol when set,
// else from the prefix of the port's name (http, http2, h2c, grpc,
// grpc-web, tcp, followed by nothing or "-suffix"), else TCP.
func PortProtocol(p *corev1.ServicePort) Protocol {
	if ap := p.GetAppProtocol(); ap != "" {
		return protocolOf(strings.ToLower(ap))
	}
	name := strings.ToLower(p.GetName())
	if i := strings.IndexByte(name, '-'); i >= 0 {
		name = name[:i]
	}
	return protocolOf(name)
}

func protocolOf(s string) Protocol {
	switch s {
	case "http", "http1", "grpc-web":
		return HTTP
	case "http2", "h2c", "grpc", "kubernetes.io/h2c":
		return HTTP2
	}
	return TCP
}

const (
	defaultConnectTimeout = 5 * time.Second
	ejectionTime          = 30 * time.Second
	ejectionInterval      = 10 * time.Second
)
