{{/*
Full name of a component: include with (list $ "<component>").
*/}}
{{- define "toolbox.fullname" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- printf "%s-%s" $root.Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Selector labels of a component: include with (list $ "<component>").
*/}}
{{- define "toolbox.selectorLabels" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
app.kubernetes.io/name: {{ $root.Chart.Name }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ $component }}
{{- end -}}

{{/*
registry/repository:tag of an image map; the tag defaults to the chart version.
Usage: include "toolbox.image" (list $ .Values.image)
*/}}
{{- define "toolbox.image" -}}
{{- $root := index . 0 -}}
{{- $image := index . 1 -}}
{{- $registry := $root.Values.global.imageRegistry | default $image.registry -}}
{{- $tag := $image.tag | default $root.Chart.Version -}}
{{- printf "%s/%s:%s" $registry $image.repository $tag -}}
{{- end -}}

{{/*
A component's Deployment: include with (list $ "<name>" <component values>).
*/}}
{{- define "toolbox.deployment" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $c := index . 2 -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "toolbox.fullname" (list $root $name) }}
  labels:
    {{- include "toolbox.selectorLabels" (list $root $name) | nindent 4 }}
spec:
  replicas: {{ $c.replicas }}
  selector:
    matchLabels:
      {{- include "toolbox.selectorLabels" (list $root $name) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "toolbox.selectorLabels" (list $root $name) | nindent 8 }}
    spec:
      {{- with $c.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ $name }}
          {{- $own := index $root.Values $name | default dict }}
          image: {{ include "toolbox.image" (list $root ($own.image | default $root.Values.image)) | quote }}
          args: ["serve", "--port={{ $c.port }}"]
          ports:
            - name: http
              containerPort: {{ $c.port }}
          {{- with $c.securityContext }}
          securityContext:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          resources:
            {{- toYaml ($c.resources | default dict) | nindent 12 }}
{{- end -}}
