{{/*
bosun.imageTag: image.tag, else global.imageTag, else the chart's appVersion.
*/}}
{{- define "bosun.imageTag" -}}
{{- $g := fromYaml (include "bosun.global" .) -}}
{{- .Values.image.tag | default $g.imageTag | default .Chart.AppVersion -}}
{{- end -}}

{{/*
bosun.image: [registry/]repository:tag; global.imageRegistry wins over
image.registry.
*/}}
{{- define "bosun.image" -}}
{{- $g := fromYaml (include "bosun.global" .) -}}
{{- $registry := $g.imageRegistry | default .Values.image.registry -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" $registry .Values.image.repository (include "bosun.imageTag" .) -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (include "bosun.imageTag" .) -}}
{{- end -}}
{{- end -}}

{{/*
bosun.imagePullSecrets: image pull secrets of the chart and the umbrella.
*/}}
{{- define "bosun.imagePullSecrets" -}}
{{- $g := fromYaml (include "bosun.global" .) -}}
{{- $secrets := concat (default list $g.imagePullSecrets) (default list .Values.imagePullSecrets) | uniq -}}
{{- if $secrets }}
imagePullSecrets:
{{- range $secrets }}
  - name: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}
