{{/*
Connection to the apiserver, shared by every service but the apiserver.
The chart's apiserver.* values win over the umbrella's global.apiserver.*;
without either, the address and CA Secret are those the apiserver chart
makes in the same release: <release>-apiserver.
*/}}

{{- define "bosun.apiserverAddress" -}}
{{- $g := fromYaml (include "bosun.global" .) -}}
{{- $ga := default dict $g.apiserver -}}
{{- .Values.apiserver.address | default $ga.address | default (printf "%s-apiserver.%s.svc:6443" .Release.Name .Release.Namespace) -}}
{{- end -}}

{{- define "bosun.apiserverInsecure" -}}
{{- $g := fromYaml (include "bosun.global" .) -}}
{{- $ga := default dict $g.apiserver -}}
{{- if or .Values.apiserver.insecure $ga.insecure }}true{{ end -}}
{{- end -}}

{{- define "bosun.apiserverCASecret" -}}
{{- $g := fromYaml (include "bosun.global" .) -}}
{{- $ga := default dict $g.apiserver -}}
{{- .Values.apiserver.caSecret | default $ga.caSecret | default (printf "%s-apiserver-tls" .Release.Name) -}}
{{- end -}}

{{/*
bosun.clientCertSecret: the kubernetes.io/tls Secret with this service's
client certificate: apiserver.clientCertSecret, else, when the umbrella's
global.apiserver.clientCertificates is set, the one the apiserver chart of
the release issues (<release>-<chart>-client; not for node-agents, whose
certificates name their node). Empty: none; always none in plaintext.
*/}}
{{- define "bosun.clientCertSecret" -}}
{{- $g := fromYaml (include "bosun.global" .) -}}
{{- $ga := default dict $g.apiserver -}}
{{- if not (include "bosun.apiserverInsecure" .) -}}
{{- if .Values.apiserver.clientCertSecret -}}
{{- .Values.apiserver.clientCertSecret -}}
{{- else if and $ga.clientCertificates (ne .Chart.Name "node-agent") -}}
{{- printf "%s-%s-client" .Release.Name .Chart.Name -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
bosun.sharedArgs: the flags every service but the apiserver takes
(pkg/server.Flags), as list items.
*/}}
{{- define "bosun.sharedArgs" -}}
- --apiserver={{ include "bosun.apiserverAddress" . }}
{{- if include "bosun.apiserverInsecure" . }}
- --insecure
{{- else }}
- --apiserver-ca-file=/etc/bosun/apiserver-ca/ca.crt
{{- end }}
{{- if include "bosun.clientCertSecret" . }}
- --client-cert-file=/etc/bosun/client/tls.crt
- --client-key-file=/etc/bosun/client/tls.key
{{- end }}
- --listen=0.0.0.0:{{ .Values.port }}
{{- include "bosun.listenerTLSArgs" . }}
{{- if .Values.metrics.enabled }}
- --metrics-listen=0.0.0.0:{{ .Values.metrics.port }}
{{- end }}
- --log-level={{ .Values.logLevel }}
{{- end -}}

{{/*
bosun.listenerTLSArgs: mutual TLS on the service's own gRPC listener, as
list items. Its client certificate serves too (the apiserver chart issues it
for the service's DNS names), and callers must present a certificate of the
cluster CA. In plaintext, --insecure covers the listener as well. The
node-agent without a client certificate Secret takes its node's own files
(see its chart).
*/}}
{{- define "bosun.listenerTLSArgs" -}}
{{- if include "bosun.clientCertSecret" . }}
- --tls-cert-file=/etc/bosun/client/tls.crt
- --tls-private-key-file=/etc/bosun/client/tls.key
- --client-ca-file=/etc/bosun/apiserver-ca/ca.crt
{{- end }}
{{- end -}}

{{/*
bosun.leaderElectionArgs: the leader election flags the replicated
control-plane services share.
*/}}
{{- define "bosun.leaderElectionArgs" -}}
{{- $le := .Values.leaderElection -}}
- --leader-elect={{ $le.enabled }}
{{- if $le.enabled }}
{{- with $le.leaseDuration }}
- --leader-elect-lease-duration={{ . }}
{{- end }}
{{- with $le.renewDeadline }}
- --leader-elect-renew-deadline={{ . }}
{{- end }}
{{- with $le.retryPeriod }}
- --leader-elect-retry-period={{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
bosun.apiserverVolumes / bosun.apiserverVolumeMounts: the apiserver's CA and
the client certificate, as list items.
*/}}
{{- define "bosun.apiserverVolumes" -}}
{{- if not (include "bosun.apiserverInsecure" .) }}
- name: apiserver-ca
  secret:
    secretName: {{ include "bosun.apiserverCASecret" . }}
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- with include "bosun.clientCertSecret" . }}
- name: client-cert
  secret:
    secretName: {{ . }}
{{- end }}
{{- end -}}

{{- define "bosun.apiserverVolumeMounts" -}}
{{- if not (include "bosun.apiserverInsecure" .) }}
- name: apiserver-ca
  mountPath: /etc/bosun/apiserver-ca
  readOnly: true
{{- end }}
{{- if include "bosun.clientCertSecret" . }}
- name: client-cert
  mountPath: /etc/bosun/client
  readOnly: true
{{- end }}
{{- end -}}
