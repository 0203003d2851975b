{{- define "settings.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "settings.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
{{- end }}

{{/*
Resources of the size class named by .Values.size (a computed key).
*/}}
{{- define "settings.resources" -}}
{{- $preset := index .Values.resourcePresets .Values.size -}}
{{- if not $preset -}}
{{- fail (printf "size %q has no entry in resourcePresets" .Values.size) -}}
{{- end -}}
{{- toYaml $preset -}}
{{- end }}
