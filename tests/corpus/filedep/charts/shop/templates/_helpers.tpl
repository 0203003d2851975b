{{/*
The shop's names come from the team library (shop-lib).
*/}}
{{- define "shop.fullname" -}}
{{- include "shop-lib.fullname" . -}}
{{- end -}}

{{- define "shop.component" -}}
{{- include "shop-lib.deployment" (dict "top" .top "name" .name "component" (index .top.Values .name)) -}}
{{- end -}}
