{{- define "shop-lib.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "shop-lib.labels" -}}
app.kubernetes.io/part-of: {{ .top.Chart.Name }}
app.kubernetes.io/component: {{ .name }}
app.kubernetes.io/instance: {{ .top.Release.Name }}
{{- with .top.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}
