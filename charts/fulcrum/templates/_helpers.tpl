{{/* Names and labels. */}}

{{- define "fulcrum.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's base name: "fulcrum" for a release called fulcrum, so a
default install names its objects as manifests/install does. */}}
{{- define "fulcrum.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "fulcrum.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fulcrum.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "fulcrum.labels" -}}
{{ include "fulcrum.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "fulcrum.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "fulcrum.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The user name Fulcrum's own requests carry: the webhooks let it write
managed weights and promote. */}}
{{- define "fulcrum.user" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "fulcrum.serviceAccountName" . }}
{{- end -}}

{{- define "fulcrum.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Switches computed from several values. Each prints "true" or "". */}}

{{/* Leader election: on when asked, or by default when more than one replica
runs (two reconcilers must never write the same weights). */}}
{{- define "fulcrum.leaderElect" -}}
{{- if kindIs "bool" .Values.leaderElection.enabled -}}
{{- if .Values.leaderElection.enabled }}true{{ end -}}
{{- else if gt (int .Values.replicas) 1 -}}
true
{{- end -}}
{{- end -}}

{{- define "fulcrum.webhookSelfSigned" -}}
{{- if and .Values.webhook.enabled (eq .Values.webhook.certificates "selfSigned") }}true{{ end -}}
{{- end -}}

{{- define "fulcrum.adminTLS" -}}
{{- if and .Values.admin.enabled (ne .Values.admin.tls.mode "none") }}true{{ end -}}
{{- end -}}

{{/* The admin certificate comes from files (a mounted Secret). */}}
{{- define "fulcrum.adminTLSFiles" -}}
{{- if and (include "fulcrum.adminTLS" .) (ne .Values.admin.tls.mode "selfSigned") }}true{{ end -}}
{{- end -}}

{{/* The admin certificate comes from the self-signed CA in RELEASE-webhook-ca. */}}
{{- define "fulcrum.adminSelfSigned" -}}
{{- if and .Values.admin.enabled (eq .Values.admin.tls.mode "selfSigned") }}true{{ end -}}
{{- end -}}

{{- define "fulcrum.adminServicePort" -}}
{{- if .Values.admin.servicePort -}}
{{- .Values.admin.servicePort -}}
{{- else if include "fulcrum.adminTLS" . -}}
8443
{{- else -}}
80
{{- end -}}
{{- end -}}

{{/* The Secret holding the admin API's certificate. */}}
{{- define "fulcrum.adminTLSSecret" -}}
{{- if eq .Values.admin.tls.mode "secret" -}}
{{- required "admin.tls.secretName is required when admin.tls.mode is secret" .Values.admin.tls.secretName -}}
{{- else -}}
{{- default (printf "%s-admin-tls" (include "fulcrum.fullname" .)) .Values.admin.tls.secretName -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the webhook's certificate (certManager and secret modes). */}}
{{- define "fulcrum.webhookTLSSecret" -}}
{{- if eq .Values.webhook.certificates "secret" -}}
{{- required "webhook.secret.name is required when webhook.certificates is secret" .Values.webhook.secret.name -}}
{{- else -}}
{{- printf "%s-webhook-tls" (include "fulcrum.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* DNS names of the Service, for serving certificates. */}}
{{- define "fulcrum.serviceHosts" -}}
{{- $svc := include "fulcrum.fullname" . -}}
{{ $svc }}.{{ .Release.Namespace }}.svc,{{ $svc }}.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}
{{- end -}}

{{/* The chart's own self-signed Issuer, used when no issuerRef is given. */}}
{{- define "fulcrum.selfSignedIssuer" -}}
{{- printf "%s-selfsigned" (include "fulcrum.fullname" .) -}}
{{- end -}}

{{- define "fulcrum.issuerRef" -}}
{{- if .issuerRef.name -}}
{{ toYaml .issuerRef }}
{{- else -}}
kind: Issuer
name: {{ .selfSigned }}
{{- end -}}
{{- end -}}

{{/* Whether the chart's self-signed Issuer is needed at all. */}}
{{- define "fulcrum.needsSelfSignedIssuer" -}}
{{- $wh := and .Values.webhook.enabled (eq .Values.webhook.certificates "certManager") (not .Values.webhook.certManager.issuerRef.name) -}}
{{- $adm := and .Values.admin.enabled (eq .Values.admin.tls.mode "certManager") (not .Values.admin.tls.certManager.issuerRef.name) -}}
{{- if or $wh $adm }}true{{ end -}}
{{- end -}}

{{/* Port of the Prometheus URL: explicit, else from the scheme. */}}
{{- define "fulcrum.prometheusPort" -}}
{{- $u := urlParse .Values.prometheus.url -}}
{{- $hostport := splitList ":" $u.host -}}
{{- if gt (len $hostport) 1 -}}
{{- last $hostport -}}
{{- else if eq $u.scheme "https" -}}
443
{{- else -}}
80
{{- end -}}
{{- end -}}

{{/* Checks of values the schema cannot express. */}}
{{- define "fulcrum.validate" -}}
{{- if and .Values.webhook.enabled (eq .Values.webhook.certificates "secret") (not .Values.webhook.secret.caBundle) -}}
{{- fail "webhook.secret.caBundle (base64 PEM of the CA that signed webhook.secret.name) is required when webhook.certificates is secret" -}}
{{- end -}}
{{- if and .Values.controller.enabled (gt (int .Values.replicas) 1) (not (include "fulcrum.leaderElect" .)) -}}
{{- fail "replicas > 1 with leaderElection.enabled=false would run several reconcilers writing the same weights: enable leader election or run one replica" -}}
{{- end -}}
{{- $adminPort := int (include "fulcrum.adminServicePort" .) -}}
{{- if and .Values.admin.enabled .Values.webhook.enabled (eq $adminPort 443) -}}
{{- fail "admin.servicePort 443 is the webhook's Service port: choose another" -}}
{{- end -}}
{{- if and .Values.admin.enabled .Values.metrics.enabled (eq $adminPort (int .Values.metrics.port)) -}}
{{- fail "admin.servicePort equals metrics.port, which the Service also serves: choose another" -}}
{{- end -}}
{{- if and (not .Values.controller.enabled) (not .Values.admin.enabled) (not .Values.webhook.enabled) -}}
{{- fail "controller, admin and webhook are all disabled: nothing would run" -}}
{{- end -}}
{{- include "fulcrum.validatePrometheus" . -}}
{{- end -}}
