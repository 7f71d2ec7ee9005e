package pods

import (
	"context"
	"errors"
	"math"
	"time"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/node-agent/internal/probes"
)

// postStartTimeout bounds a postStart hook; Kubernetes waits without a
// bound, which would let one hook hold the pod's other containers forever.
const postStartTimeout = 2 * time.Minute

// hook runs one of a container's lifecycle handlers (postStart, preStop)
// the way a probe is checked: a command in the container, an HTTP GET or a
// TCP connection to the pod, within timeout. It returns why it failed.
func (w *worker) hook(ctx context.Context, spec *corev1.Container, id string, h *corev1.LifecycleHandler, timeout time.Duration) error {
	if h == nil {
		return nil
	}
	ip := ""
	if w.sb != nil {
		ip = w.sb.Network.IP
	}
	p := &corev1.Probe{Exec: h.GetExec(), HttpGet: h.GetHttpGet(), TcpSocket: h.GetTcpSocket(),
		TimeoutSeconds: int32(max(1, math.Ceil(timeout.Seconds())))}
	if ok, msg := probes.Check(ctx, w.m.opts.Runtime, p, probes.Target{ContainerID: id, PodIP: ip, Ports: spec.GetPorts()}); !ok {
		return errors.New(msg)
	}
	return nil
}

// stopContainer stops a running container as Kubernetes does: its preStop
// hook first, then SIGTERM with what is left of grace, then SIGKILL. A
// failing hook is logged and the stop goes on.
func (w *worker) stopContainer(ctx context.Context, spec *corev1.Container, id string, grace time.Duration) error {
	if h := spec.GetLifecycle().GetPreStop(); h != nil && grace > 0 {
		start := time.Now()
		hctx, cancel := context.WithTimeout(ctx, grace)
		err := w.hook(hctx, spec, id, h, grace)
		cancel()
		if err != nil {
			w.log.Warn("preStop hook failed", "container", spec.GetName(), "err", err)
		}
		grace = max(grace-time.Since(start), 0)
	}
	return w.m.opts.Runtime.StopContainer(ctx, id, grace)
}
