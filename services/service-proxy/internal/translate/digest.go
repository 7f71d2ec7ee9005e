package translate

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"maps"
	"runtime/debug"
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

// buildIdentity names the build of the service-proxy: its module version
// and VCS revision, as stamped by the go command. Digests include it so
// that replicas running different code never give one version to two
// different contents.
var buildIdentity = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	id := bi.GoVersion + "\x00" + bi.Main.Path + "\x00" + bi.Main.Version + "\x00" + bi.Main.Sum
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
			id += "\x00" + s.Key + "=" + s.Value
		}
	}
	return id
})

// digestSeed is what every Digest of one translation starts from: the
// build and the options.
func digestSeed(opts Options) []byte {
	d := sha256.New()
	writeString(d, buildIdentity())
	writeString(d, opts.ClusterDomain)
	writeString(d, opts.IngressAddress)
	writeUint(d, uint64(opts.OutboundPort))
	return d.Sum(nil)
}

type byteWriter interface{ Write([]byte) (int, error) }

// writeString writes s length-first, so that no two sequences of strings
// write the same bytes.
func writeString(w byteWriter, s string) {
	writeUint(w, uint64(len(s)))
	w.Write([]byte(s))
}

func writeUint(w byteWriter, v uint64) {
	var n [binary.MaxVarintLen64]byte
	w.Write(n[:binary.PutUvarint(n[:], v)])
}

// digest sums up what the clusters, routes and listeners of svc are made
// from (see Group.Digest): everything translation reads of the Service
// except its creation time, which only orders Services. It is "" when the
// spec cannot be encoded, which makes the resources' content their hash.
func (t *translator) digest(svc *corev1.Service) string {
	spec, err := proto.MarshalOptions{Deterministic: true}.Marshal(svc.GetSpec())
	if err != nil {
		return ""
	}
	d := sha256.New()
	d.Write(t.seed)
	md := svc.GetMetadata()
	writeString(d, md.GetName())
	writeString(d, md.GetNamespace())
	ann := md.GetAnnotations()
	writeUint(d, uint64(len(ann)))
	for _, k := range slices.Sorted(maps.Keys(ann)) {
		writeString(d, k)
		writeString(d, ann[k])
	}
	d.Write(spec)
	return hex.EncodeToString(d.Sum(nil)[:16])
}
