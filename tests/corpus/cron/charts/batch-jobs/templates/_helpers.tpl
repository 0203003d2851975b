{{- define "batch-jobs.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 52 | trimSuffix "-" }}
{{- end }}

{{- define "batch-jobs.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The image of one job: the job's own image, else the chart's, with the tag
falling back to the appVersion (argument form of default).
Called with (dict "job" $job "root" $).
*/}}
{{- define "batch-jobs.image" -}}
{{- $image := .job.image | default dict -}}
{{- $repository := $image.repository | default .root.Values.image.repository -}}
{{- $tag := default .root.Chart.AppVersion (coalesce $image.tag .root.Values.image.tag) -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end }}
