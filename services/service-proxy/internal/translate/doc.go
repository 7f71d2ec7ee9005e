// Package translate turns Bosun Services, Endpoints and Nodes into Envoy
// resources: Clusters, ClusterLoadAssignments, Listeners and
// RouteConfigurations. It is pure: the same input always gives the same
// output, in the same order, and nothing here does I/O.
//
// Every resource for port P of Service S in namespace NS is named S.NS:P:
//
//	Cluster               web.default:80   EDS, load balancing from the Service
//	ClusterLoadAssignment web.default:80   ready endpoints only, grouped by locality
//	RouteConfiguration    web.default:80   one virtual host: web, web.default,
//	                                       web.default.svc.<cluster domain>, each
//	                                       with and without :80
//	Listener              web.default:80   API listener for proxyless gRPC
//	                                       (dial xds:///web.default:80)
//
// and the Listener web.default is an API listener for the Service's first port
// (dial xds:///web.default). For Envoy, a Service with a cluster IP also gets a
// Listener named <clusterIP>_<port> (an HTTP connection manager for HTTP and
// gRPC ports, a TCP proxy otherwise) that the shared virtual_outbound listener
// hands connections to, and a NodePort or LoadBalancer Service gets an
// ingress_<port> Listener bound on the proxy's ingress address.
//
// A Service whose endpoints depend on the proxy's Node (see
// Group.NodeLocal) takes each cluster's endpoints from an assignment named
// for the Node, S.NS:P@<node>; with externalTrafficPolicy Local its ingress
// goes through a cluster S.NS:P/node-local of the Node's endpoints only.
//
// A port's protocol comes from appProtocol, else from the port name's prefix
// (http, http2, h2c, grpc, tcp), as in Istio; anything else is TCP.
//
// Services choose their load balancing with the fields Kubernetes has and with
// annotations for the rest (see the Annotation constants). A Service the
// translator cannot turn into valid resources is left out whole and reported
// as a Problem; the others are unaffected.
package translate
