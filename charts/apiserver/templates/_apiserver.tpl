{{/*
apiserver.embedded: "true" when etcd is embedded (no external endpoints).
*/}}
{{- define "apiserver.embedded" -}}
{{- if not .Values.etcd.endpoints }}true{{ end -}}
{{- end -}}

{{/*
apiserver.tlsSecret: the Secret holding the serving certificate.
*/}}
{{- define "apiserver.tlsSecret" -}}
{{- .Values.tls.secretName | default (printf "%s-tls" (include "bosun.fullname" .)) -}}
{{- end -}}

{{/*
apiserver.validate fails on values that cannot work together.
*/}}
{{- define "apiserver.validate" -}}
{{- if and (include "apiserver.embedded" .) (gt (int .Values.replicas) 1) -}}
{{- fail (printf "apiserver: replicas is %d but etcd.endpoints is empty: each replica would embed an etcd of its own; set etcd.endpoints to an external etcd cluster or use one replica" (int .Values.replicas)) -}}
{{- end -}}
{{- if and (include "apiserver.embedded" .) .Values.etcd.tls.secretName -}}
{{- fail "apiserver: etcd.tls.secretName is set but etcd.endpoints is empty: TLS applies only to an external etcd" -}}
{{- end -}}
{{- if and (not (include "apiserver.insecure" .)) (not .Values.tls.create) (not .Values.tls.secretName) -}}
{{- fail "apiserver: tls.create is false and tls.secretName is empty: name a Secret with tls.crt, tls.key and ca.crt, or let the chart create one" -}}
{{- end -}}
{{- end -}}

{{/*
apiserver.podSpec: the pod template of the StatefulSet or the Deployment.
*/}}
{{- define "apiserver.podTemplate" -}}
metadata:
  labels:
    {{- include "bosun.selectorLabels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  serviceAccountName: {{ include "bosun.serviceAccountName" . }}
  automountServiceAccountToken: false
  {{- with include "bosun.imagePullSecrets" . | trim }}
  {{- . | nindent 2 }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  {{- with include "bosun.scheduling" . | trim }}
  {{- . | nindent 2 }}
  {{- end }}
  containers:
    - name: apiserver
      image: {{ include "bosun.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - --listen=0.0.0.0:{{ .Values.port }}
        - --http-listen={{ if gt (int .Values.httpPort) 0 }}0.0.0.0:{{ .Values.httpPort }}{{ end }}
        {{- if .Values.metrics.enabled }}
        - --metrics-listen=0.0.0.0:{{ .Values.metrics.port }}
        {{- end }}
        - --log-level={{ .Values.logLevel }}
        {{- if include "apiserver.embedded" . }}
        - --data-dir={{ .Values.dataDir }}
        {{- else }}
        - --etcd-endpoints={{ join "," .Values.etcd.endpoints }}
        {{- if .Values.etcd.tls.secretName }}
        - --etcd-cafile=/etc/bosun/etcd/ca.crt
        - --etcd-certfile=/etc/bosun/etcd/tls.crt
        - --etcd-keyfile=/etc/bosun/etcd/tls.key
        {{- end }}
        {{- end }}
        {{- if include "apiserver.insecure" . }}
        - --insecure
        {{- else }}
        - --tls-cert-file=/etc/bosun/tls/tls.crt
        - --tls-private-key-file=/etc/bosun/tls/tls.key
        - --tls-ca-file=/etc/bosun/tls/ca.crt
        {{- if .Values.tls.clientCA }}
        - --client-ca-file=/etc/bosun/tls/ca.crt
        {{- end }}
        {{- if .Values.tls.create }}
        {{- /* The generated CA signs node certificates for bootstrap tokens
        and the apiserver's own certificate towards node-agents. */}}
        - --cluster-signing-cert-file=/etc/bosun/signing/tls.crt
        - --cluster-signing-key-file=/etc/bosun/signing/tls.key
        {{- end }}
        {{- end }}
        {{- with .Values.extraArgs }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with include "bosun.env" . | trim }}
      env:
        {{- . | nindent 8 }}
      {{- end }}
      ports:
        - name: grpc
          containerPort: {{ .Values.port }}
          protocol: TCP
        {{- if gt (int .Values.httpPort) 0 }}
        - name: http
          containerPort: {{ .Values.httpPort }}
          protocol: TCP
        {{- end }}
        {{- if .Values.metrics.enabled }}
        - name: metrics
          containerPort: {{ .Values.metrics.port }}
          protocol: TCP
        {{- end }}
      {{- /* gRPC is served over TLS, which Kubernetes' gRPC probe cannot speak. */}}
      livenessProbe:
        {{- if .Values.metrics.enabled }}
        httpGet:
          path: /healthz
          port: metrics
        {{- else }}
        tcpSocket:
          port: grpc
        {{- end }}
        periodSeconds: 10
        failureThreshold: 6
      readinessProbe:
        {{- if .Values.metrics.enabled }}
        httpGet:
          path: /readyz
          port: metrics
        {{- else }}
        tcpSocket:
          port: grpc
        {{- end }}
        periodSeconds: 5
        failureThreshold: 3
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: data
          mountPath: {{ .Values.dataDir }}
        - name: tmp
          mountPath: /tmp
        {{- if not (include "apiserver.insecure" .) }}
        - name: tls
          mountPath: /etc/bosun/tls
          readOnly: true
        {{- if .Values.tls.create }}
        - name: signing
          mountPath: /etc/bosun/signing
          readOnly: true
        {{- end }}
        {{- end }}
        {{- if and (not (include "apiserver.embedded" .)) .Values.etcd.tls.secretName }}
        - name: etcd-tls
          mountPath: /etc/bosun/etcd
          readOnly: true
        {{- end }}
  volumes:
    {{- if not (and (include "apiserver.embedded" .) .Values.persistence.enabled) }}
    - name: data
      emptyDir: {}
    {{- end }}
    - name: tmp
      emptyDir: {}
    {{- if not (include "apiserver.insecure" .) }}
    - name: tls
      secret:
        secretName: {{ include "apiserver.tlsSecret" . }}
    {{- if .Values.tls.create }}
    - name: signing
      secret:
        secretName: {{ include "bosun.fullname" . }}-ca
    {{- end }}
    {{- end }}
    {{- if and (not (include "apiserver.embedded" .)) .Values.etcd.tls.secretName }}
    - name: etcd-tls
      secret:
        secretName: {{ .Values.etcd.tls.secretName }}
    {{- end }}
{{- end -}}

{{/*
apiserver.insecure: "true" when the apiserver serves plaintext: its own
insecure value or the umbrella's global.apiserver.insecure.
*/}}
{{- define "apiserver.insecure" -}}
{{- $g := fromYaml (include "bosun.global" .) -}}
{{- $ga := default dict $g.apiserver -}}
{{- if or .Values.insecure $ga.insecure }}true{{ end -}}
{{- end -}}
