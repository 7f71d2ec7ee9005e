{{/*
bosun.name: the chart's name, or nameOverride.
*/}}
{{- define "bosun.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
bosun.fullname: <release>-<chart> (or fullnameOverride). Always both parts,
so that the names one chart derives for another in the same release (the
apiserver's Service and TLS Secret) hold whatever the release is called.
*/}}
{{- define "bosun.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (default .Chart.Name .Values.nameOverride) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
bosun.labels: the recommended Kubernetes labels of every object.
*/}}
{{- define "bosun.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "bosun.selectorLabels" . }}
app.kubernetes.io/version: {{ include "bosun.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: bosun
{{- end -}}

{{/*
bosun.selectorLabels: the labels that select a service's pods.
*/}}
{{- define "bosun.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bosun.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
bosun.serviceAccountName: the service account the pods run as.
*/}}
{{- define "bosun.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "bosun.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
bosun.global: the umbrella chart's global values, or an empty dict when the
chart is installed on its own.
*/}}
{{- define "bosun.global" -}}
{{- toYaml (default dict .Values.global) -}}
{{- end -}}
