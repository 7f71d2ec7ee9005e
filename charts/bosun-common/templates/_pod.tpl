{{/*
bosun.env: environment of a service's container, as list items: where to
send traces, a memory limit the Go runtime respects, and extraEnv.
*/}}
{{- define "bosun.env" -}}
{{- $g := fromYaml (include "bosun.global" .) -}}
{{- with (.Values.otlpEndpoint | default $g.otlpEndpoint) }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- if and .Values.resources .Values.resources.limits .Values.resources.limits.memory }}
- name: GOMEMLIMIT
  valueFrom:
    resourceFieldRef:
      resource: limits.memory
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
bosun.probes: liveness on /healthz of the metrics listener (the process is
up), readiness on its /readyz, which reports the gRPC health of the service
(it reached the apiserver and is ready to work): the gRPC port itself
serves mutual TLS, which Kubernetes' gRPC probes cannot speak. Without
metrics, both check that the gRPC port accepts connections.
*/}}
{{- define "bosun.probes" -}}
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
{{- end -}}

{{/*
bosun.scheduling: where the pods may go, as pod spec fields.
*/}}
{{- define "bosun.scheduling" -}}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
bosun.deployment: the Deployment of a replicated control-plane service
(scheduler, controller, health-checker, service-proxy). Call it with
(dict "ctx" $ "args" (list ...)), args being the service's own flags after
the shared ones and before extraArgs.
*/}}
{{- define "bosun.deployment" -}}
{{- $ := .ctx -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "bosun.fullname" $ }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "bosun.labels" $ | nindent 4 }}
spec:
  replicas: {{ $.Values.replicas }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "bosun.selectorLabels" $ | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: {{ if gt (int $.Values.replicas) 1 }}1{{ else }}0{{ end }}
      maxSurge: 1
  template:
    metadata:
      labels:
        {{- include "bosun.selectorLabels" $ | nindent 8 }}
        {{- with $.Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $.Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "bosun.serviceAccountName" $ }}
      automountServiceAccountToken: false
      {{- with include "bosun.imagePullSecrets" $ | trim }}
      {{- . | nindent 6 }}
      {{- end }}
      securityContext:
        {{- toYaml $.Values.podSecurityContext | nindent 8 }}
      {{- with include "bosun.scheduling" $ | trim }}
      {{- . | nindent 6 }}
      {{- end }}
      containers:
        - name: {{ $.Chart.Name }}
          image: {{ include "bosun.image" $ | quote }}
          imagePullPolicy: {{ $.Values.image.pullPolicy }}
          args:
            {{- include "bosun.sharedArgs" $ | nindent 12 }}
            {{- with .args }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- with $.Values.extraArgs }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- with include "bosun.env" $ | trim }}
          env:
            {{- . | nindent 12 }}
          {{- end }}
          ports:
            - name: grpc
              containerPort: {{ $.Values.port }}
              protocol: TCP
            {{- if $.Values.metrics.enabled }}
            - name: metrics
              containerPort: {{ $.Values.metrics.port }}
              protocol: TCP
            {{- end }}
          {{- include "bosun.probes" $ | nindent 10 }}
          resources:
            {{- toYaml $.Values.resources | nindent 12 }}
          securityContext:
            {{- toYaml $.Values.securityContext | nindent 12 }}
          {{- $mounts := include "bosun.apiserverVolumeMounts" $ | trim }}
          {{- if $mounts }}
          volumeMounts:
            {{- $mounts | nindent 12 }}
          {{- end }}
      {{- $volumes := include "bosun.apiserverVolumes" $ | trim }}
      {{- if $volumes }}
      volumes:
        {{- $volumes | nindent 8 }}
      {{- end }}
{{- end -}}

{{/*
bosun.service: a ClusterIP Service for the gRPC port and metrics. Call with
(dict "ctx" $ "portName" "grpc").
*/}}
{{- define "bosun.service" -}}
{{- $ := .ctx -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "bosun.fullname" $ }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "bosun.labels" $ | nindent 4 }}
  {{- with $.Values.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $.Values.service.type }}
  selector:
    {{- include "bosun.selectorLabels" $ | nindent 4 }}
  ports:
    - name: {{ .portName | default "grpc" }}
      port: {{ $.Values.port }}
      targetPort: grpc
      protocol: TCP
      appProtocol: grpc
    {{- if $.Values.metrics.enabled }}
    - name: metrics
      port: {{ $.Values.metrics.port }}
      targetPort: metrics
      protocol: TCP
      appProtocol: http
    {{- end }}
{{- end -}}

{{/*
bosun.serviceAccount: the pods' own identity; Bosun's services never call
the Kubernetes API, so no token is mounted and no role is bound.
*/}}
{{- define "bosun.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "bosun.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "bosun.labels" . | nindent 4 }}
  {{- with .Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: false
{{- end -}}
{{- end -}}

{{/*
bosun.podDisruptionBudget: keeps all but one replica up during voluntary
disruptions, made when more than one replica runs.
*/}}
{{- define "bosun.podDisruptionBudget" -}}
{{- if and .Values.podDisruptionBudget.enabled (gt (int .Values.replicas) 1) -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "bosun.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "bosun.labels" . | nindent 4 }}
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      {{- include "bosun.selectorLabels" . | nindent 6 }}
{{- end -}}
{{- end -}}

{{/*
bosun.requireLeaderElection: more than one replica of a service that works
alone needs leader election.
*/}}
{{- define "bosun.requireLeaderElection" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) -}}
{{- fail (printf "%s: replicas is %d but leaderElection.enabled is false; replicas would work against each other" .Chart.Name (int .Values.replicas)) -}}
{{- end -}}
{{- end -}}
