package controller

import (
	"fmt"
	"hash/fnv"
	"strconv"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/util/rand"
)

// Hash is a short, stable, label-safe digest of a message (a pod template)
// and a collision count: the pod-template-hash of Deployments and the
// controller-revision-hash of DaemonSets and StatefulSets.
func Hash(m proto.Message, collisionCount int32) string {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(err) // a generated message always marshals
	}
	h := fnv.New32a()
	h.Write(b)
	if collisionCount > 0 {
		fmt.Fprintf(h, "/%d", collisionCount)
	}
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

// RevisionHashLabel carries the controller-revision-hash of a DaemonSet's or
// StatefulSet's pods.
const RevisionHashLabel = "controller-revision-hash"
