{{- define "kv.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
image: registry/repository:tag (tag defaults to the appVersion); takes the image map and the root.
*/}}
{{- define "kv.image" -}}
{{- $registry := coalesce .root.Values.global.imageRegistry .image.registry -}}
{{- $tag := .image.tag | default .root.Chart.AppVersion | toString -}}
{{- printf "%s/%s:%s" $registry .image.repository $tag -}}
{{- end -}}

{{/*
The secret holding the password; an existing one when set.
*/}}
{{- define "kv.secretName" -}}
{{- if .Values.auth.existingSecret -}}
{{- tpl .Values.auth.existingSecret $ -}}
{{- else -}}
{{- include "kv.fullname" . -}}
{{- end -}}
{{- end -}}

{{- define "kv.secretPasswordKey" -}}
{{- if and .Values.auth.existingSecret .Values.auth.existingSecretPasswordKey -}}
{{- .Values.auth.existingSecretPasswordKey -}}
{{- else -}}
kv-password
{{- end -}}
{{- end -}}
