package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	batchv1 "bosun.dev/gen/bosun/batch/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
)

func (s *session) newApplyCommand() *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "apply -f FILENAME",
		Short: "Create or update objects from manifests",
		Long: "Apply creates each object of the manifests, or updates it when it exists.\n" +
			"An update takes the manifest's labels, annotations and every top-level field\n" +
			"but metadata and status; the object's other metadata and its status are kept.",
		Example: "  bosun apply -f web.yaml\n  bosun apply -f manifests/\n  cat web.yaml | bosun apply -f -",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			objs, err := readManifests(files, s.deps.Stdin)
			if err != nil {
				return err
			}
			conn, err := s.connect()
			if err != nil {
				return err
			}
			ns, err := s.namespace()
			if err != nil {
				return err
			}
			failed := false
			for _, obj := range objs {
				k, err := api.KindOf(obj)
				if err != nil {
					return err
				}
				if k.Namespaced && api.Meta(obj).GetNamespace() == "" {
					api.Meta(obj).Namespace = ns
				}
				result, err := applyObject(cmd.Context(), client.ForKind(conn, k), obj)
				if err != nil {
					fmt.Fprintln(s.deps.Stderr, formatError(err))
					failed = true
					continue
				}
				fmt.Fprintf(s.deps.Stdout, "%s/%s %s\n", qualifiedKind(k), obj.GetMetadata().GetName(), result)
			}
			if failed {
				return errReported
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "manifest file, directory or - for stdin (repeatable)")
	return cmd
}

// Results of applying one object, as kubectl prints them.
const (
	applyCreated    = "created"
	applyConfigured = "configured"
	applyUnchanged  = "unchanged"
)

// applyObject creates obj, or updates the stored object to match it.
func applyObject(ctx context.Context, rc *client.Resource[api.Object], obj api.Object) (string, error) {
	md := obj.GetMetadata()
	if _, err := rc.Create(ctx, withoutServerFields(obj)); err == nil {
		return applyCreated, nil
	} else if !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	result := applyUnchanged
	err := client.RetryOnConflict(ctx, client.DefaultRetry, func() error {
		current, err := rc.Get(ctx, md.GetNamespace(), md.GetName())
		if err != nil {
			return err
		}
		desired := mergeForUpdate(current, obj)
		if proto.Equal(desired, current) {
			result = applyUnchanged
			return nil
		}
		updated, err := rc.Update(ctx, desired)
		if err != nil {
			return err
		}
		// The server may default what the manifest left out; when what it
		// stored is what it had, nothing changed.
		if sameDesiredState(current, updated) {
			result = applyUnchanged
		} else {
			result = applyConfigured
		}
		return nil
	})
	return result, err
}

// withoutServerFields returns obj without the metadata the server assigns, so
// that the output of `get -o yaml` can be applied to create the object afresh.
func withoutServerFields(obj api.Object) api.Object {
	out := proto.Clone(obj).(api.Object)
	m := api.Meta(out)
	m.ResourceVersion, m.Uid, m.Generation = "", "", 0
	m.CreationTimestamp, m.DeletionTimestamp, m.DeletionGracePeriodSeconds = nil, nil, nil
	return out
}

// mergeForUpdate returns current with the user's changes: the manifest's
// labels, annotations (added to the stored ones, which controllers also
// write) and every top-level field but metadata and status. Fields the
// server assigns and the manifest leaves empty are kept (see keepAssigned).
func mergeForUpdate(current, user api.Object) api.Object {
	out := proto.Clone(current).(api.Object)
	m := out.ProtoReflect()
	u := user.ProtoReflect()
	for i := 0; i < m.Descriptor().Fields().Len(); i++ {
		fd := m.Descriptor().Fields().Get(i)
		switch fd.Name() {
		case "metadata", "status":
			continue
		}
		if u.Has(fd) {
			m.Set(fd, cloneValue(fd, u.Get(fd)))
		} else {
			m.Clear(fd)
		}
	}
	meta := api.Meta(out)
	meta.Labels = user.GetMetadata().GetLabels()
	for k, v := range user.GetMetadata().GetAnnotations() {
		if meta.Annotations == nil {
			meta.Annotations = map[string]string{}
		}
		meta.Annotations[k] = v
	}
	keepAssigned(current, out)
	return out
}

func cloneValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) protoreflect.Value {
	if fd.Message() != nil && !fd.IsList() && !fd.IsMap() {
		return protoreflect.ValueOfMessage(proto.Clone(v.Message().Interface()).ProtoReflect())
	}
	return v
}

// keepAssigned copies into desired the fields the server or a controller
// assigns once and the manifest usually leaves out, so that re-applying an
// unchanged manifest neither fails nor clears them.
func keepAssigned(current, desired api.Object) {
	switch cur := current.(type) {
	case *corev1.Service:
		spec := desired.(*corev1.Service).GetSpec()
		if spec == nil || cur.GetSpec() == nil {
			return
		}
		if spec.ClusterIp == "" {
			spec.ClusterIp = cur.GetSpec().GetClusterIp()
		}
		if len(spec.ClusterIps) == 0 {
			spec.ClusterIps = cur.GetSpec().GetClusterIps()
		}
		for _, p := range spec.GetPorts() {
			if p.NodePort != 0 {
				continue
			}
			for _, old := range cur.GetSpec().GetPorts() {
				if old.GetPort() == p.GetPort() && old.GetProtocol() == p.GetProtocol() {
					p.NodePort = old.GetNodePort()
				}
			}
		}
	case *corev1.Pod:
		spec := desired.(*corev1.Pod).GetSpec()
		if spec != nil && spec.NodeName == "" {
			spec.NodeName = cur.GetSpec().GetNodeName()
		}
	case *batchv1.Job:
		spec := desired.(*batchv1.Job).GetSpec()
		if spec != nil && spec.Selector == nil {
			spec.Selector = cur.GetSpec().GetSelector()
		}
	}
}

// sameDesiredState reports whether two versions of an object have the same
// labels, annotations and fields other than metadata and status.
func sameDesiredState(a, b api.Object) bool {
	ma, mb := a.ProtoReflect(), b.ProtoReflect()
	for i := 0; i < ma.Descriptor().Fields().Len(); i++ {
		fd := ma.Descriptor().Fields().Get(i)
		switch fd.Name() {
		case "metadata", "status":
			continue
		}
		if ma.Has(fd) != mb.Has(fd) {
			return false
		}
		if ma.Has(fd) && !ma.Get(fd).Equal(mb.Get(fd)) {
			return false
		}
	}
	return mapsEqual(a.GetMetadata().GetLabels(), b.GetMetadata().GetLabels()) &&
		mapsEqual(a.GetMetadata().GetAnnotations(), b.GetMetadata().GetAnnotations())
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
