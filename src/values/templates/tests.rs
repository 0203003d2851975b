//! Template snippets as public charts write them.

use super::*;

fn chart(prefix: &[&str], files: &[(&str, &str)]) -> ChartTemplates {
    ChartTemplates {
        prefix: prefix.iter().map(|s| s.to_string()).collect(),
        files: files
            .iter()
            .map(|(name, text)| TemplateFile {
                name: name.to_string(),
                text: text.to_string(),
            })
            .collect(),
    }
}

/// The top chart with one template.
fn one(text: &str) -> Refs {
    scan(&[chart(&[], &[("templates/t.yaml", text)])], &[])
}

fn known(r: &Refs, dotted: &str) -> bool {
    r.is_known(&dotted.split('.').collect::<Vec<_>>())
}

fn fallback(r: &Refs, dotted: &str) -> Option<FallbackKind> {
    r.tag_fallback(&dotted.split('.').collect::<Vec<_>>())
        .map(|f| f.kind)
}

#[test]
fn field_chains_are_known_with_their_prefixes() {
    let r = one("image: {{ .Values.image.repository }}\nport: {{ .Values.service.port }}");
    assert!(known(&r, "image"));
    assert!(known(&r, "image.repository"));
    assert!(known(&r, "service.port"));
    assert!(!known(&r, "image.tag"));
    assert!(!known(&r, "image.repository.x"));
    assert!(!known(&r, "replicaCount"));
    assert!(r.unreadable().is_empty());
}

#[test]
fn dollar_root_inside_range_and_with() {
    let r = one(r#"{{- range .Values.hosts }}
- host: {{ . }}
  secret: {{ $.Values.tls.secretName }}
{{- end }}
{{- with .Values.ingress }}
class: {{ $.Values.ingressClass.name }}
{{- end }}"#);
    assert!(known(&r, "tls.secretName"));
    assert!(known(&r, "ingressClass.name"));
    assert!(known(&r, "hosts.0"));
    assert!(!known(&r, "ingress.secretName"));
}

#[test]
fn index_with_literal_keys() {
    let r = one(r#"{{ index .Values "a" "b" }}
{{ index .Values.annotations "prometheus.io/scrape" }}
{{ index .Values.list 0 "name" }}"#);
    assert!(known(&r, "a.b"));
    assert!(!known(&r, "a.c"));
    assert!(r.is_known(&["annotations", "prometheus.io/scrape"]));
    assert!(known(&r, "list.0.name"));
    assert!(!known(&r, "list.1.name"));
    assert!(r.dynamic().is_empty());
}

/// `include "x" (list $ .Values.a)` with `index . 0` / `index . 1` in the define.
#[test]
fn list_arguments_are_read_by_index() {
    let helpers = r#"{{- define "app.container" -}}
{{- $root := index . 0 -}}
{{- $c := index . 1 -}}
name: {{ $c.name }}
image: {{ $root.Values.image.repository }}:{{ $root.Values.image.tag | default $root.Chart.AppVersion }}
{{- with $c.securityContext }}{{ toYaml . }}{{ end }}
{{- end -}}"#;
    let r = scan(
        &[chart(
            &[],
            &[
                ("templates/_helpers.tpl", helpers),
                (
                    "templates/d.yaml",
                    r#"{{ include "app.container" (list $ .Values.sidecar) }}"#,
                ),
            ],
        )],
        &[],
    );
    assert!(known(&r, "sidecar.name"));
    assert!(known(&r, "sidecar.securityContext.runAsUser"));
    assert!(known(&r, "image.repository"));
    assert!(!known(&r, "sidecar.nmae"));
    assert_eq!(fallback(&r, "image.tag"), Some(FallbackKind::AppVersion));
}

#[test]
fn with_sets_dot_and_a_typo_stays_unknown() {
    let r = one(r#"{{- with .Values.ingress }}
{{- if .enabled }}
apiVersion: networking.k8s.io/v1
kind: Ingress
spec:
  ingressClassName: {{ .className }}
{{- else }}
# not {{ .Values.fallbackNote }}
{{- end }}
{{- end }}"#);
    assert!(known(&r, "ingress.enabled"));
    assert!(known(&r, "ingress.className"));
    assert!(!known(&r, "ingrss"));
    assert!(!known(&r, "ingress.hosts"));
    // The else branch of `if` inside `with` still has the with's dot.
    assert!(known(&r, "ingress.Values.fallbackNote"));
}

#[test]
fn with_else_keeps_the_old_dot() {
    let r = one("{{ with .Values.a }}{{ .x }}{{ else }}{{ .Values.b }}{{ end }}");
    assert!(known(&r, "a.x"));
    assert!(known(&r, "b"));
}

#[test]
fn range_reads_every_element() {
    let r = one(r#"ports:
{{- range .Values.ports }}
  - name: {{ .name }}
    containerPort: {{ .containerPort }}
{{- end }}
env:
{{- range $key, $value := .Values.env }}
  - name: {{ $key }}
    value: {{ $value | quote }}
{{- end }}"#);
    assert!(known(&r, "ports.0.name"));
    assert!(known(&r, "ports.3.containerPort"));
    assert!(!known(&r, "ports.0.nmae"));
    assert!(known(&r, "env.DATABASE_URL"));
    assert!(!known(&r, "env.DATABASE_URL.x"));
}

#[test]
fn to_yaml_consumes_whole() {
    let r = one(r#"          livenessProbe:
            {{- toYaml .Values.livenessProbe | nindent 12 }}
          resources:
            {{- with .Values.resources }}
            {{- toYaml . | nindent 12 }}
            {{- end }}"#);
    assert!(known(&r, "livenessProbe.timeoutSeconds"));
    assert!(known(&r, "livenessProbe.httpGet.path"));
    assert!(r.is_whole(&["livenessProbe", "httpGet"]));
    assert!(known(&r, "resources.limits.cpu"));
    assert!(!known(&r, "readinessProbe"));
}

const HELPERS: &str = r#"{{/*
Common labels
*/}}
{{- define "x.labels" -}}
helm.sh/chart: {{ .Chart.Name }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "x.unused" -}}
{{ .Values.neverRendered }}
{{- end }}

{{- define "img" -}}
{{- $registry := .imageRoot.registry | default .global.imageRegistry -}}
{{- printf "%s/%s:%s" $registry .imageRoot.repository (.imageRoot.tag | default "latest") -}}
{{- end }}
"#;

#[test]
fn include_runs_the_define_with_the_argument() {
    let r = scan(
        &[chart(
            &[],
            &[
                ("templates/_helpers.tpl", HELPERS),
                (
                    "templates/deployment.yaml",
                    r#"metadata:
  labels:
    {{- include "x.labels" . | nindent 4 }}
spec:
  containers:
    - image: {{ include "img" (dict "imageRoot" .Values.image "global" $.Values.global) }}"#,
                ),
            ],
        )],
        &[],
    );
    assert!(known(&r, "commonLabels.team"));
    assert!(known(&r, "image.registry"));
    assert!(known(&r, "image.repository"));
    assert!(known(&r, "image.tag"));
    assert!(!known(&r, "image.pullPolicy"));
    assert!(known(&r, "global.imageRegistry"));
    // Helm renders only what runs: a define nobody includes reads nothing.
    assert!(!known(&r, "neverRendered"));
    // `default "latest"` pins nothing.
    assert_eq!(fallback(&r, "image.tag"), None);
}

#[test]
fn subchart_prefix_and_helpers_shared_with_the_parent() {
    let common = chart(
        &["common"],
        &[(
            "charts/common/templates/_names.tpl",
            r#"{{- define "common.names.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}"#,
        )],
    );
    let backend = chart(
        &["backend-api"],
        &[(
            "charts/backend-api/templates/deployment.yaml",
            r#"name: {{ include "common.names.fullname" . }}
image: "{{ .Values.global.imageRegistry }}/{{ .Values.image.repository }}:{{ .Values.image.tag }}""#,
        )],
    );
    let top = chart(
        &[],
        &[(
            "templates/service.yaml",
            r#"name: {{ include "common.names.fullname" . }}"#,
        )],
    );
    let r = scan(&[top, common, backend], &[]);
    // The parent's own values, and the subchart's under its alias.
    assert!(known(&r, "fullnameOverride"));
    assert!(known(&r, "nameOverride"));
    assert!(known(&r, "backend-api.fullnameOverride"));
    assert!(known(&r, "backend-api.image.tag"));
    assert!(!known(&r, "image.tag"));
    // The common chart renders nothing itself.
    assert!(!known(&r, "common.fullnameOverride"));
    // Globals are copied down from the top.
    assert!(known(&r, "global.imageRegistry"));
    assert!(known(&r, "backend-api.global.imageRegistry"));
}

#[test]
fn computed_keys_are_dynamic_and_known_below() {
    let r = one(r#"{{- range $name := .Values.enabledComponents }}
{{- $component := index $.Values.components $name }}
replicas: {{ $component.replicas }}
{{- end }}
{{- $k := "fixed" }}
{{ index .Values.other $k }}
{{ get .Values.byKey .Release.Name }}"#);
    let prefixes: Vec<Vec<String>> = r.dynamic().iter().map(|d| d.prefix.clone()).collect();
    assert_eq!(
        prefixes,
        vec![vec!["components".to_string()], vec!["byKey".to_string()]]
    );
    let d = &r.dynamic()[0];
    assert_eq!(d.file, "templates/t.yaml");
    assert_eq!(d.line, 2);
    assert_eq!(d.expr, "index $.Values.components $name");
    assert!(known(&r, "components.frontend.replicas"));
    assert!(known(&r, "components.frontend.anything.deep"));
    assert!(r.is_whole(&["components", "x"]));
    // A variable holding a literal is a literal key.
    assert!(known(&r, "other.fixed"));
    assert!(!known(&r, "other.x"));
    assert!(known(&r, "byKey.x.y"));
}

#[test]
fn has_key_get_pluck_dig() {
    let r = one(
        r#"{{ if hasKey .Values.podSecurityContext "fsGroup" }}x{{ end }}
{{ get .Values.labels "team" }}
{{ pluck "port" .Values.service .Values.defaults | first }}
{{ dig "metrics" "serviceMonitor" "enabled" false .Values.asMap }}"#,
    );
    assert!(known(&r, "podSecurityContext.fsGroup"));
    assert!(!known(&r, "podSecurityContext.runAsUser"));
    assert!(known(&r, "labels.team"));
    assert!(known(&r, "service.port"));
    assert!(known(&r, "defaults.port"));
    assert!(known(&r, "asMap.metrics.serviceMonitor.enabled"));
    assert!(r.dynamic().is_empty());
}

#[test]
fn comments_and_trim_markers() {
    let r = one(r#"{{- /* {{ .Values.commentedOut }} */ -}}
{{/*
A multi-line comment: .Values.alsoCommented
*/}}
{{-  .Values.trimmed  -}}
{{- if .Values.a -}}{{- .Values.b -}}{{- end -}}"#);
    assert!(!known(&r, "commentedOut"));
    assert!(!known(&r, "alsoCommented"));
    assert!(known(&r, "trimmed"));
    assert!(known(&r, "a"));
    assert!(known(&r, "b"));
    assert!(r.unreadable().is_empty());
}

#[test]
fn else_if_branches_are_all_read() {
    let r = one(r#"{{- if .Values.serviceAccount.create }}
name: {{ .Values.serviceAccount.name }}
{{- else if .Values.serviceAccount.existing }}
name: {{ .Values.serviceAccount.existingName }}
{{- else }}
name: {{ .Values.defaultName | quote }}
{{- end }}"#);
    for k in [
        "serviceAccount.create",
        "serviceAccount.name",
        "serviceAccount.existing",
        "serviceAccount.existingName",
        "defaultName",
    ] {
        assert!(known(&r, k), "{k}");
    }
}

#[test]
fn tpl_value_strings_and_tpl_calls() {
    let r = scan(
        &[chart(
            &[],
            &[(
                "templates/cm.yaml",
                r#"data:
  config: {{ tpl .Values.config . | quote }}
  extra: {{ tpl (toYaml .Values.extraConfig) $ }}"#,
            )],
        )],
        &[
            (
                vec!["config".into()],
                "url: http://{{ .Values.database.host }}:{{ .Values.database.port }}".into(),
            ),
            (
                vec!["sub".into(), "note".into()],
                "{{ .Values.subOnly }}".into(),
            ),
            (vec!["broken".into()], "{{ oops".into()),
        ],
    );
    assert!(known(&r, "config"));
    assert!(r.is_whole(&["config"]));
    assert!(known(&r, "extraConfig.any.key"));
    assert!(known(&r, "database.host"));
    assert!(known(&r, "database.port"));
    assert!(known(&r, "subOnly"));
    // A value string that does not parse is reported as such, never as a template.
    let u = r.unreadable();
    assert_eq!(u.len(), 1);
    assert!(u[0].value_string);
    assert_eq!(u[0].file, "values: broken");
}

#[test]
fn value_strings_of_a_subchart_also_run_with_its_root() {
    let r = scan(
        &[chart(&[], &[]), chart(&["sub"], &[])],
        &[(
            vec!["sub".into(), "note".into()],
            "{{ .Values.name }}".into(),
        )],
    );
    assert!(known(&r, "name"));
    assert!(known(&r, "sub.name"));
}

/// Bitnami's `common` chart (2.x), `templates/_images.tpl`, as published.
const BITNAMI_IMAGES: &str = r#"{{/*
Copyright Broadcom, Inc. All Rights Reserved.
SPDX-License-Identifier: APACHE-2.0
*/}}

{{/* vim: set filetype=mustache: */}}
{{/*
Return the proper image name.
If image tag and digest are not defined, termination fallbacks to chart appVersion.
{{ include "common.images.image" ( dict "imageRoot" .Values.path.to.the.image "global" .Values.global "chart" .Chart ) }}
*/}}
{{- define "common.images.image" -}}
{{- $registryName := default .imageRoot.registry ((.global).imageRegistry) -}}
{{- $repositoryName := .imageRoot.repository -}}
{{- $separator := ":" -}}
{{- $termination := .imageRoot.tag | toString -}}

{{- if not .imageRoot.tag }}
  {{- if .chart }}
    {{- $termination = .chart.AppVersion | toString -}}
  {{- end -}}
{{- end -}}
{{- if .imageRoot.digest }}
    {{- $separator = "@" -}}
    {{- $termination = .imageRoot.digest | toString -}}
{{- end -}}
{{- if $registryName }}
    {{- printf "%s/%s%s%s" $registryName $repositoryName $separator $termination -}}
{{- else -}}
    {{- printf "%s%s%s"  $repositoryName $separator $termination -}}
{{- end -}}
{{- end -}}

{{/*
Return the proper Docker Image Registry Secret Names (deprecated: use common.images.renderPullSecrets instead)
{{ include "common.images.pullSecrets" ( dict "images" (list .Values.path.to.the.image1, .Values.path.to.the.image2) "global" .Values.global) }}
*/}}
{{- define "common.images.pullSecrets" -}}
  {{- $pullSecrets := list }}

  {{- range ((.global).imagePullSecrets) -}}
    {{- if kindIs "map" . -}}
      {{- $pullSecrets = append $pullSecrets .name -}}
    {{- else -}}
      {{- $pullSecrets = append $pullSecrets . -}}
    {{- end }}
  {{- end -}}

  {{- range .images -}}
    {{- range .pullSecrets -}}
      {{- if kindIs "map" . -}}
        {{- $pullSecrets = append $pullSecrets .name -}}
      {{- else -}}
        {{- $pullSecrets = append $pullSecrets . -}}
      {{- end -}}
    {{- end -}}
  {{- end -}}

  {{- if (not (empty $pullSecrets)) }}
imagePullSecrets:
    {{- range $pullSecrets | uniq }}
  - name: {{ . }}
    {{- end }}
  {{- end }}
{{- end -}}
"#;

/// The same helper before bitnami added the appVersion fallback (common 1.x).
const BITNAMI_IMAGES_V1: &str = r#"{{- define "common.images.image" -}}
{{- $registryName := .imageRoot.registry -}}
{{- $repositoryName := .imageRoot.repository -}}
{{- $separator := ":" -}}
{{- $termination := .imageRoot.tag | toString -}}
{{- if .global }}
    {{- if .global.imageRegistry }}
     {{- $registryName = .global.imageRegistry -}}
    {{- end -}}
{{- end -}}
{{- if .imageRoot.digest }}
    {{- $separator = "@" -}}
    {{- $termination = .imageRoot.digest | toString -}}
{{- end -}}
{{- if $registryName }}
    {{- printf "%s/%s%s%s" $registryName $repositoryName $separator $termination -}}
{{- else -}}
    {{- printf "%s%s%s"  $repositoryName $separator $termination  -}}
{{- end -}}
{{- end -}}"#;

const BITNAMI_CALLER: &str = r#"{{- define "app.image" -}}
{{ include "common.images.image" (dict "imageRoot" .Values.image "global" .Values.global "chart" .Chart) }}
{{- end -}}
{{- define "app.imagePullSecrets" -}}
{{- include "common.images.pullSecrets" (dict "images" (list .Values.image .Values.metrics.image) "global" .Values.global) -}}
{{- end -}}"#;

const BITNAMI_DEPLOYMENT: &str = r#"spec:
  template:
    spec:
      {{- include "app.imagePullSecrets" . | nindent 6 }}
      containers:
        - name: app
          image: {{ template "app.image" . }}"#;

#[test]
fn bitnami_common_images_image_falls_back_to_app_version() {
    let r = scan(
        &[
            chart(
                &[],
                &[
                    ("charts/app/templates/_helpers.tpl", BITNAMI_CALLER),
                    ("charts/app/templates/deployment.yaml", BITNAMI_DEPLOYMENT),
                ],
            ),
            chart(
                &["common"],
                &[(
                    "charts/app/charts/common/templates/_images.tpl",
                    BITNAMI_IMAGES,
                )],
            ),
        ],
        &[],
    );
    for k in [
        "image.registry",
        "image.repository",
        "image.tag",
        "image.digest",
        "global.imageRegistry",
        "image.pullSecrets.0",
        "metrics.image.pullSecrets.0.name",
        "global.imagePullSecrets.0.name",
    ] {
        assert!(known(&r, k), "{k}");
    }
    assert!(!known(&r, "image.pullPolicy"));
    let f = r.tag_fallback(&["image", "tag"]).expect("a fallback");
    assert_eq!(f.kind, FallbackKind::AppVersion);
    assert_eq!(f.file, "charts/app/charts/common/templates/_images.tpl");
    assert_eq!(f.line, 20);
    // metrics.image goes only to pullSecrets: no fallback there.
    assert_eq!(fallback(&r, "metrics.image.tag"), None);
}

#[test]
fn bitnami_v1_helper_has_no_fallback() {
    let r = scan(
        &[
            chart(
                &[],
                &[
                    ("templates/_helpers.tpl", BITNAMI_CALLER),
                    ("templates/deployment.yaml", BITNAMI_DEPLOYMENT),
                ],
            ),
            chart(
                &["common"],
                &[("charts/common/templates/_images.tpl", BITNAMI_IMAGES_V1)],
            ),
        ],
        &[],
    );
    assert!(known(&r, "image.tag"));
    assert!(known(&r, "global.imageRegistry"));
    assert_eq!(fallback(&r, "image.tag"), None);
}

#[test]
fn default_app_version_in_argument_and_pipeline_form() {
    let arg = one(
        r#"image: "{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}""#,
    );
    assert_eq!(fallback(&arg, "image.tag"), Some(FallbackKind::AppVersion));
    let piped = one(
        r#"image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}""#,
    );
    assert_eq!(
        fallback(&piped, "image.tag"),
        Some(FallbackKind::AppVersion)
    );
    let f = piped.tag_fallback(&["image", "tag"]).unwrap();
    assert_eq!((f.file.as_str(), f.line), ("templates/t.yaml", 1));
    let printf = one(
        r#"image: {{ printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) | quote }}"#,
    );
    assert_eq!(
        fallback(&printf, "image.tag"),
        Some(FallbackKind::AppVersion)
    );
    let var = one(
        r#"{{- $tag := .Values.image.tag | default (printf "v%s" .Chart.AppVersion) -}}
image: {{ .Values.image.repository }}:{{ $tag }}"#,
    );
    assert_eq!(fallback(&var, "image.tag"), Some(FallbackKind::AppVersion));
}

#[test]
fn default_chart_version_is_pinned_too() {
    let r = one(
        r#"image: {{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.Version }}
sidecar: {{ .Values.sidecar.image.tag | default (printf "v%s" .Chart.Version) }}
other: {{ .Values.other.tag | default .Chart.Name }}"#,
    );
    assert_eq!(fallback(&r, "image.tag"), Some(FallbackKind::ChartVersion));
    assert_eq!(
        fallback(&r, "sidecar.image.tag"),
        Some(FallbackKind::ChartVersion)
    );
    assert_eq!(fallback(&r, "other.tag"), None);
}

#[test]
fn fallbacks_in_a_subchart_are_at_its_prefix() {
    let r = scan(
        &[
            chart(&[], &[]),
            chart(
                &["backend-api"],
                &[(
                    "charts/backend-api/templates/deployment.yaml",
                    r#"image: {{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"#,
                )],
            ),
        ],
        &[],
    );
    assert_eq!(
        fallback(&r, "backend-api.image.tag"),
        Some(FallbackKind::AppVersion)
    );
    assert_eq!(fallback(&r, "image.tag"), None);
}

#[test]
fn literal_fallbacks_other_than_latest_are_pinned() {
    let none = one(r#"image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}""#);
    assert!(known(&none, "image.tag"));
    assert_eq!(fallback(&none, "image.tag"), None);
    let latest = one(r#"image: {{ .Values.image.tag | default "latest" }}"#);
    assert_eq!(fallback(&latest, "image.tag"), None);
    let blank = one(r#"image: {{ default "" .Values.image.tag }}"#);
    assert_eq!(fallback(&blank, "image.tag"), None);
    let pinned = one(r#"image: {{ default "1.2.3" .Values.image.tag }}"#);
    assert_eq!(
        fallback(&pinned, "image.tag"),
        Some(FallbackKind::Literal("1.2.3".into()))
    );
}

#[test]
fn coalesce_or_ternary_and_if_else_fallbacks() {
    for (src, path) in [
        (
            r#"{{ coalesce .Values.image.tag .Values.global.tag .Chart.AppVersion }}"#,
            "image.tag",
        ),
        (
            r#"{{ coalesce .Values.image.tag .Values.global.tag .Chart.AppVersion }}"#,
            "global.tag",
        ),
        (
            r#"{{ or .Values.image.tag .Chart.AppVersion }}"#,
            "image.tag",
        ),
        (
            r#"{{ ternary .Values.image.tag .Chart.AppVersion (not (empty .Values.image.tag)) }}"#,
            "image.tag",
        ),
        (
            r#"{{ if .Values.image.tag }}{{ .Values.image.tag }}{{ else }}{{ .Chart.AppVersion }}{{ end }}"#,
            "image.tag",
        ),
        (
            r#"{{ if empty .Values.image.tag }}{{ .Chart.AppVersion }}{{ else }}{{ .Values.image.tag }}{{ end }}"#,
            "image.tag",
        ),
        (
            r#"{{- $tag := .Values.image.tag -}}
{{- if not $tag }}{{ $tag = .Chart.AppVersion }}{{ end -}}
image: {{ $tag }}"#,
            "image.tag",
        ),
        (
            r#"{{- with .Values.image.tag }}{{ . }}{{ else }}{{ $.Chart.AppVersion }}{{ end }}"#,
            "image.tag",
        ),
        (
            r#"{{- if eq .Values.image.tag "" }}{{ .Chart.AppVersion }}{{ end }}"#,
            "image.tag",
        ),
        (
            r#"{{- define "app.version" -}}{{ .Chart.AppVersion }}{{- end -}}
{{ .Values.image.tag | default (include "app.version" .) }}"#,
            "image.tag",
        ),
    ] {
        let r = one(src);
        assert_eq!(fallback(&r, path), Some(FallbackKind::AppVersion), "{src}");
    }
    // A then-branch of a positive test is not a fallback.
    let r = one(r#"{{ if .Values.image.tag }}{{ .Chart.AppVersion }}{{ end }}"#);
    assert_eq!(fallback(&r, "image.tag"), None);
}

#[test]
fn tplvalues_render_with_a_scope_keeps_other_keys_unknown() {
    let r = scan(
        &[chart(
            &[],
            &[
                (
                    "templates/_tplvalues.tpl",
                    r#"{{- define "common.tplvalues.render" -}}
{{- $value := typeIs "string" .value | ternary .value (.value | toYaml) }}
{{- if contains "{{" (toJson .value) }}
  {{- if .scope }}
      {{- tpl (cat "{{- with $.RelativeScope -}}" $value "{{- end }}") (merge (dict "RelativeScope" .scope) .context) }}
  {{- else }}
    {{- tpl $value .context }}
  {{- end }}
{{- else }}
    {{- $value }}
{{- end }}
{{- end -}}"#,
                ),
                (
                    "templates/deployment.yaml",
                    r#"{{- if .Values.podLabels }}
{{- include "common.tplvalues.render" (dict "value" .Values.podLabels "context" $ "scope" .Values.scope) }}
{{- end }}"#,
                ),
            ],
        )],
        &[],
    );
    assert!(known(&r, "podLabels.app"));
    assert!(!known(&r, "somethingElse"));
}

#[test]
fn set_and_merge_update_dicts_held_in_variables() {
    let r = one(r#"{{- $ctx := dict "root" $ -}}
{{- $_ := set $ctx "svc" .Values.service -}}
port: {{ $ctx.svc.port }}
{{- $all := merge (dict) .Values.extraLabels -}}
name: {{ $ctx.root.Values.nameOverride }}"#);
    assert!(known(&r, "service.port"));
    assert!(!known(&r, "service.type"));
    assert!(known(&r, "extraLabels.any"));
    assert!(known(&r, "nameOverride"));
}

#[test]
fn unknown_functions_consume_whole_and_scalar_ones_do_not() {
    let r = one(
        r#"{{ concat .Values.extraVolumes .Values.volumes | toYaml }}
{{ if eq .Values.mode "a" }}{{ len .Values.items }}{{ end }}"#,
    );
    assert!(known(&r, "extraVolumes.0.name"));
    assert!(known(&r, "volumes.0.name"));
    assert!(known(&r, "mode"));
    assert!(!known(&r, "mode.x"));
    assert!(known(&r, "items"));
    assert!(!known(&r, "items.0.x"));
}

#[test]
fn helper_files_do_not_render_their_top_level() {
    let r = scan(
        &[chart(
            &[],
            &[("templates/_helpers.tpl", "{{ .Values.strayTopLevel }}")],
        )],
        &[],
    );
    assert!(!known(&r, "strayTopLevel"));
}

#[test]
fn the_top_chart_define_wins_over_a_subchart_one() {
    let r = scan(
        &[
            chart(
                &[],
                &[
                    (
                        "templates/_h.tpl",
                        r#"{{ define "n" }}{{ .Values.fromTop }}{{ end }}"#,
                    ),
                    ("templates/a.yaml", r#"{{ include "n" . }}"#),
                ],
            ),
            chart(
                &["sub"],
                &[(
                    "charts/sub/templates/_h.tpl",
                    r#"{{ define "n" }}{{ .Values.fromSub }}{{ end }}"#,
                )],
            ),
        ],
        &[],
    );
    assert!(known(&r, "fromTop"));
    assert!(!known(&r, "fromSub"));
}

#[test]
fn recursive_helpers_terminate() {
    let r = one(r#"{{- define "walk" -}}
{{- range $k, $v := . }}{{ include "walk" $v }}{{ include "walk" (dict "x" $v) }}{{ end -}}
{{- end -}}
{{ include "walk" .Values.tree }}"#);
    assert!(known(&r, "tree.a"));
}

#[test]
fn an_unparsable_template_is_recorded_and_scanning_goes_on() {
    let r = scan(
        &[chart(
            &[],
            &[
                (
                    "templates/broken.yaml",
                    "kind: ConfigMap\ndata:\n  {{ if .Values.config.enabled }}\n  a: {{ .Values.config.a }}\n",
                ),
                ("templates/ok.yaml", "{{ .Values.ok }}"),
            ],
        )],
        &[],
    );
    let u = r.unreadable();
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].file, "templates/broken.yaml");
    assert_eq!(u[0].line, 3);
    assert!(!u[0].value_string);
    assert!(u[0].message.contains("never closed"), "{}", u[0].message);
    // Conservatively, the paths it could lex are consumed whole.
    assert!(known(&r, "config.enabled"));
    assert!(known(&r, "config.a.b"));
    assert!(known(&r, "ok"));
    assert!(!known(&r, "other"));
    for (src, msg) in [
        ("{{ .Values.a-b }}", "bad character"),
        ("{{ end }}", "unexpected {{end}}"),
        ("{{ .Values.a ", "unclosed action"),
    ] {
        let r = one(src);
        assert!(
            r.unreadable()[0].message.contains(msg),
            "{src}: {:?}",
            r.unreadable()
        );
    }
}

/// Every prefix and some garbled slices of every template above: never a panic.
#[test]
fn truncated_and_garbled_templates_never_panic() {
    let texts = [
        HELPERS,
        BITNAMI_IMAGES,
        BITNAMI_IMAGES_V1,
        BITNAMI_CALLER,
        BITNAMI_DEPLOYMENT,
        r#"{{- range $k, $v := .Values.env }}{{ $k }}: {{ $v | quote }}{{ else }}{{ "é" }} 'x' `raw` 0x1F -1.5e3{{ end }}"#,
        r#"{{- with .Values.a }}{{ (.b).c }}{{ else with .Values.d }}{{ template "t" . }}{{ end }}{{ block "t" . }}{{ break }}{{ end }}"#,
    ];
    let mut n = 0;
    for text in texts {
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        for &(i, _) in &chars {
            let cut = &text[..i];
            let _ = one(cut);
            let _ = scan(
                &[chart(&[], &[("templates/t.yaml", cut)])],
                &[(vec!["v".into()], cut.into())],
            );
            // Drop one character, and swap the halves.
            let (j, c) = chars[(i * 7919) % chars.len()];
            let dropped = format!("{}{}", &text[..j], &text[j + c.len_utf8()..]);
            let _ = one(&dropped);
            let _ = one(&format!("{}{}", &text[i..], &text[..i]));
            n += 1;
        }
    }
    assert!(n > 1000);
}

#[test]
fn a_large_chart_scans_quickly() {
    // 50 templates sharing bitnami's helpers and a few of their own.
    let mut files = vec![
        (
            "templates/_helpers.tpl".to_string(),
            format!("{HELPERS}\n{BITNAMI_CALLER}"),
        ),
        (
            "charts/common/templates/_images.tpl".to_string(),
            BITNAMI_IMAGES.to_string(),
        ),
    ];
    for i in 0..50 {
        files.push((
            format!("templates/t{i}.yaml"),
            format!(
                r#"{{{{- if .Values.c{i}.enabled }}}}
metadata:
  labels: {{{{- include "x.labels" . | nindent 4 }}}}
spec:
  {{{{- include "app.imagePullSecrets" . | nindent 2 }}}}
  image: {{{{ include "common.images.image" (dict "imageRoot" .Values.c{i}.image "global" .Values.global "chart" .Chart) }}}}
  {{{{- range .Values.c{i}.ports }}}}
  - {{{{ .name }}}}: {{{{ .port | default 80 }}}}
  {{{{- end }}}}
  resources: {{{{- toYaml .Values.c{i}.resources | nindent 4 }}}}
{{{{- end }}}}"#
            ),
        ));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let c = [chart(&[], &files)];
    let start = std::time::Instant::now();
    let r = scan(&c, &[]);
    let took = start.elapsed();
    assert!(known(&r, "c49.image.tag"));
    assert_eq!(fallback(&r, "c7.image.tag"), Some(FallbackKind::AppVersion));
    // Unoptimized build on a shared machine: generous; release is far below 5 ms.
    assert!(took < std::time::Duration::from_millis(500), "{took:?}");
}
