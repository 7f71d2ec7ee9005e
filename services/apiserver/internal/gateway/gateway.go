// Package gateway serves the API as REST/JSON in the Kubernetes URL layout
// (/api/v1/namespaces/{namespace}/pods/{name}, /apis/apps/v1/...), translated
// by grpc-gateway into calls on the apiserver's own gRPC port, so both fronts
// share every rule. The bindings are in proto/gateway.yaml; the OpenAPI
// description is generated into gen/openapi.
package gateway

import (
	"context"
	"fmt"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	authorizationv1 "bosun.dev/gen/bosun/authorization/v1"
	batchv1 "bosun.dev/gen/bosun/batch/v1"
	certificatesv1 "bosun.dev/gen/bosun/certificates/v1"
	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	rbacv1 "bosun.dev/gen/bosun/rbac/v1"
)

type registerFunc func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error

var handlers = []registerFunc{
	corev1.RegisterNamespaceServiceHandler, corev1.RegisterNodeServiceHandler, corev1.RegisterPodServiceHandler,
	corev1.RegisterServiceServiceHandler, corev1.RegisterEndpointsServiceHandler, corev1.RegisterConfigMapServiceHandler,
	corev1.RegisterSecretServiceHandler, corev1.RegisterEventServiceHandler,
	appsv1.RegisterDeploymentServiceHandler, appsv1.RegisterReplicaSetServiceHandler,
	appsv1.RegisterDaemonSetServiceHandler, appsv1.RegisterStatefulSetServiceHandler,
	batchv1.RegisterJobServiceHandler, coordinationv1.RegisterLeaseServiceHandler,
	rbacv1.RegisterRoleServiceHandler, rbacv1.RegisterClusterRoleServiceHandler,
	rbacv1.RegisterRoleBindingServiceHandler, rbacv1.RegisterClusterRoleBindingServiceHandler,
	authorizationv1.RegisterAccessReviewServiceHandler, certificatesv1.RegisterNodeCertificateServiceHandler,
}

// Handler returns the REST handler, forwarding to the gRPC API over conn.
// It also answers /healthz. extra options are added to the gateway's mux (the
// apiserver forwards the authenticated identity with them).
func Handler(ctx context.Context, conn *grpc.ClientConn, extra ...runtime.ServeMuxOption) (http.Handler, error) {
	mux := runtime.NewServeMux(append([]runtime.ServeMuxOption{
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: false},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
	}, extra...)...)
	for _, register := range handlers {
		if err := register(ctx, mux, conn); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	top := http.NewServeMux()
	top.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	top.Handle("/", mux)
	return top, nil
}
