{{/*
A whole Deployment for one component.
{{ include "shop-lib.deployment" (dict "top" $ "name" "web" "component" .Values.web) }}
*/}}
{{- define "shop-lib.deployment" -}}
{{- $top := .top -}}
{{- $c := .component -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "shop-lib.fullname" $top }}-{{ .name }}
  labels:
    {{- include "shop-lib.labels" . | nindent 4 }}
spec:
  replicas: {{ $c.replicas | default 1 }}
  selector:
    matchLabels:
      app.kubernetes.io/component: {{ .name }}
      app.kubernetes.io/instance: {{ $top.Release.Name }}
  template:
    metadata:
      labels:
        {{- include "shop-lib.labels" . | nindent 8 }}
    spec:
      containers:
        - name: {{ .name }}
          image: "{{ $c.image.repository }}:{{ $c.image.tag | default $top.Chart.AppVersion }}"
          {{- with $c.args }}
          args:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $c.env }}
          env:
            {{- range $k, $v := . }}
            - name: {{ $k }}
              value: {{ tpl (toString $v) $top | quote }}
            {{- end }}
          {{- end }}
          {{- if $c.port }}
          ports:
            - name: http
              containerPort: {{ $c.port }}
          {{- end }}
          {{- with $c.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
{{- end -}}
